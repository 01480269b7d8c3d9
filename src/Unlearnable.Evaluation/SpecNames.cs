using System.Text.Json;
using System.Text.Json.Serialization;

namespace Unlearnable.Evaluation;

public enum DataKind { SyntheticIdentities, Identities, Captions, SyntheticScenes }

public enum ProtectionSource { None, Mem, Em, Folder, Sidecar, Posts }

public enum AttackMode { FineTune, FromScratch }

/// <summary>
/// How a spec writes its choices: every enum as its kebab-case name ("fine-tune", "synthetic-identities", "platform"),
/// and a name it does not know refused while parsing, with the names it does.
/// </summary>
public static class SpecNames
{
    public static string Of<T>(T value) where T : struct, Enum => JsonNamingPolicy.KebabCaseLower.ConvertName(value.ToString());

    public static IEnumerable<string> All<T>() where T : struct, Enum => Enum.GetValues<T>().Select(Of);

    /// <summary>The JSON converter for every enum in a spec.</summary>
    public sealed class Converter : JsonConverterFactory
    {
        public override bool CanConvert(Type type) => type.IsEnum;

        public override JsonConverter CreateConverter(Type type, JsonSerializerOptions options) =>
            (JsonConverter)Activator.CreateInstance(typeof(Named<>).MakeGenericType(type))!;
    }

    sealed class Named<T> : JsonConverter<T> where T : struct, Enum
    {
        public override T Read(ref Utf8JsonReader reader, Type type, JsonSerializerOptions options)
        {
            var text = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
            foreach (var value in Enum.GetValues<T>())
                if (string.Equals(Of(value), text, StringComparison.OrdinalIgnoreCase)) return value;
            throw new JsonException($"{(text is null ? "a " + reader.TokenType.ToString().ToLowerInvariant() : $"'{text}'")} is not known; use {string.Join(", ", All<T>())}");
        }

        public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options) => writer.WriteStringValue(Of(value));
    }
}
