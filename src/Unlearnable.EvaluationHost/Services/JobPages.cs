using Grpc.Core;
using Unlearnable.Contracts.V1;
using Unlearnable.EvaluationHost.Jobs;

namespace Unlearnable.EvaluationHost.Services;

/// <summary>
/// ListJobs a page at a time, of the caller's tenant's jobs only: at most <see cref="MaxPageSize"/> jobs and <see cref="MaxPageBytes"/> of them (specs may be
/// 64 KiB each, and a client takes 4 MiB messages by default). The token is the last job's place in the queue, so
/// jobs added or deleted between pages neither repeat nor hide the ones after it.
/// </summary>
public static class JobPages
{
    public const int DefaultPageSize = 50, MaxPageSize = 100;
    public const int MaxPageBytes = 2 << 20;
    const string TokenPrefix = "after:";

    public static ListJobsResponse Read(JobStore store, string tenant, ListJobsRequest request)
    {
        if (request.PageSize is < 0 or > MaxPageSize)
            throw Invalid("page_size", $"page_size is {request.PageSize}; give 1 to {MaxPageSize} (0 = {DefaultPageSize})");
        int size = request.PageSize == 0 ? DefaultPageSize : request.PageSize;
        var (after, afterId) = request.PageToken.Length == 0 ? (0L, "") : Place(request.PageToken);
        var rows = store.Page(tenant, after, afterId, size + 1);
        var page = new ListJobsResponse();
        long bytes = 0, last = after;
        foreach (var (job, seq) in rows.Take(size))
        {
            bytes += job.CalculateSize() + 8;
            if (page.Jobs.Count > 0 && bytes > MaxPageBytes) break;
            page.Jobs.Add(job);
            last = seq;
        }
        bool more = rows.Count > page.Jobs.Count;
        if (more) page.NextPageToken = Convert.ToBase64String(System.Text.Encoding.ASCII.GetBytes($"{TokenPrefix}{last}:{page.Jobs[^1].JobId}"));
        return page;
    }

    /// <summary>The last listed job's place in the queue: its sequence number and id.</summary>
    static (long Seq, string Id) Place(string token)
    {
        try
        {
            var text = System.Text.Encoding.ASCII.GetString(Convert.FromBase64String(token));
            var parts = text.StartsWith(TokenPrefix, StringComparison.Ordinal) ? text[TokenPrefix.Length..].Split(':') : [];
            if (parts.Length == 2 && long.TryParse(parts[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long seq)
                && parts[1].Length is > 0 and <= 64 && parts[1].All(char.IsAsciiLetterOrDigit)) return (seq, parts[1]);
        }
        catch (FormatException) { }
        throw Invalid("page_token", "page_token is not one this server gave; pass next_page_token from the page before, or empty for the first page");
    }

    static RpcException Invalid(string field, string message) => Hosting.GrpcErrors.InvalidArgument(message, [(field, message)]);
}
