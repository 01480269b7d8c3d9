using System.Globalization;

namespace Unlearnable.Sidecar.Profiles;

/// <summary>A trigger's token ids as the stores keep them: comma-separated, "" for none.</summary>
static class TriggerIds
{
    public static string Format(int[] ids) => string.Join(',', ids.Select(id => id.ToString(CultureInfo.InvariantCulture)));

    public static int[] Parse(string text) => text.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(x => int.Parse(x, CultureInfo.InvariantCulture)).ToArray();
}
