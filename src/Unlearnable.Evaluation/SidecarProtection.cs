using System.Collections.Concurrent;
using System.Globalization;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Unlearnable.Contracts.V1;
using Unlearnable.Data;
using Unlearnable.Imaging;

namespace Unlearnable.Evaluation;

/// <summary>What was posted: the protected split, and how the posts were made (for the report).</summary>
public sealed record SidecarPosts(IReadOnlyList<CaptionedImage> Items, int Users, int ConvertedToPng)
{
    public string Describe() =>
        $"posted as {Users} sidecar user{(Users == 1 ? "" : "s")}{(Users > 1 ? " (one per person, as each would post their own photos)" : "")}" +
        (ConvertedToPng > 0 ? $"; {ConvertedToPng} image{(ConvertedToPng == 1 ? "" : "s")} not in JPEG, PNG or WebP converted to PNG before posting" : "");
}

/// <summary>
/// The black-box path: every training pair is posted to a running sidecar's Protect, exactly as
/// a platform would, and the hacker trains on what came back. Each owner's photos are posted as
/// that owner's own user, so per-user protection (sticky triggers, the user's noise) works as it
/// would for real people. The post carries the image's first caption; the trigger the sidecar
/// chose is prefixed to all of the image's captions (one trigger per image, as the sidecar
/// publishes one caption per post). Formats a platform would not take (PGM, BMP, GIF) are posted as
/// the PNG a user's phone would have sent. Posts already answered are kept in the work folder, so
/// an interrupted run only sends the rest; a few run at once so the sidecar can batch them.
/// </summary>
public sealed class SidecarProtection(ProtectionSpec spec, string workDir, int concurrency = 8)
{
    /// <summary>
    /// The sidecar user an owner's posts are made as: unique to the work folder, so two jobs never
    /// collide on the sidecar's idempotent post ids or share a user's profile, and a resumed job is
    /// the same users again. Images without an owner are all one user.
    /// </summary>
    public static string UserIdFor(string workDir, string? owner = null) =>
        "evaluation-" + ShortHash(Path.GetFullPath(workDir)) + (owner is null ? "" : "-" + ShortHash(owner));

    static string ShortHash(string text) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(text)))[..12];

    public Action<int, int>? OnPost { get; init; }

    string ResultsPath => Path.Combine(workDir, "posts.tsv");

    public SidecarPosts Protect(IReadOnlyList<CaptionedImage> train, CancellationToken cancel)
    {
        Directory.CreateDirectory(Path.Combine(workDir, "images"));
        var done = LoadDone();
        using var channel = GrpcChannel.ForAddress(spec.SidecarAddress!, new GrpcChannelOptions { MaxReceiveMessageSize = 64 << 20 });
        var client = new ProtectionService.ProtectionServiceClient(channel);
        var headers = new Metadata();
        if (!string.IsNullOrEmpty(spec.SidecarApiKey)) headers.Add("x-api-key", spec.SidecarApiKey);
        using var log = new StreamWriter(ResultsPath, append: true);

        try
        {
            Send(train, done, client, headers, log, cancel);
        }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerExceptions[0]);
        }

        var items = train.Select((item, i) => item with
        {
            Image = new MemoryImage(item.Id, File.ReadAllBytes(ImagePath(i))),
            Captions = done[i].Length == 0 ? item.Captions : item.Captions.Select(c => done[i] + " " + c).ToList(),
        }).ToList();
        int converted = train.Count(item => ImageFormats.Sniff(item.Image.ReadBytes()) is null);
        return new SidecarPosts(items, train.Select(item => item.Owner).Distinct().Count(), converted);
    }

    /// <summary>The bytes a user would upload: the file itself when a platform takes its format, else its pixels as PNG.</summary>
    static byte[] Upload(ImageSource image)
    {
        var bytes = image.ReadBytes();
        if (ImageFormats.Sniff(bytes) is not null) return bytes;
        using var decoded = SafeImageDecoder.Decode(bytes, what: image.Name);
        return ImageEncoding.Png(decoded);
    }

    void Send(IReadOnlyList<CaptionedImage> train, ConcurrentDictionary<int, string> done, ProtectionService.ProtectionServiceClient client,
        Metadata headers, StreamWriter log, CancellationToken cancel)
    {
        var gate = new object();
        int count = done.Count;
        Parallel.ForEach(Enumerable.Range(0, train.Count).Where(i => !done.ContainsKey(i)),
            new ParallelOptions { MaxDegreeOfParallelism = concurrency, CancellationToken = cancel }, i =>
            {
                var item = train[i];
                var request = new ProtectRequest
                {
                    UserId = UserIdFor(workDir, item.Owner), PostId = $"{i}-{item.Id}", Image = ByteString.CopyFrom(Upload(item.Image)), Caption = item.Captions[0],
                    // With a strength the level's own ε applies; epsilon is for a sidecar at its default level (and in-process methods).
                    Options = new ProtectOptions { Epsilon = spec.Strength is null ? spec.Epsilon : 0, TriggerLength = spec.TriggerLength ?? 0, Strength = Strength() },
                };
                ProtectResponse response;
                try { response = client.Protect(request, headers, deadline: DateTime.UtcNow.AddMinutes(10), cancellationToken: cancel); }
                catch (RpcException e) when (e.StatusCode != StatusCode.Cancelled)
                {
                    throw new SidecarRefusedException($"the sidecar at {spec.SidecarAddress} refused training image {item.Id}: {e.StatusCode} {e.Status.Detail}", e);
                }
                File.WriteAllBytes(ImagePath(i), response.Image.ToByteArray());
                lock (gate)
                {
                    done[i] = response.Trigger;
                    log.WriteLine($"{i.ToString(CultureInfo.InvariantCulture)}\t{response.Trigger}");
                    log.Flush();
                    OnPost?.Invoke(++count, train.Count);
                }
            });
    }

    ProtectionStrength Strength() => spec.Strength switch
    {
        null => ProtectionStrength.Unspecified,
        Protection.ProtectionStrength.Low => ProtectionStrength.Low,
        Protection.ProtectionStrength.High => ProtectionStrength.High,
        _ => ProtectionStrength.Medium,
    };

    string ImagePath(int index) => Path.Combine(workDir, "images", index.ToString("D6", CultureInfo.InvariantCulture) + ".png");

    /// <summary>Posts answered before: a line is written only after its image is on disk, and a torn last line is ignored.</summary>
    ConcurrentDictionary<int, string> LoadDone()
    {
        var done = new ConcurrentDictionary<int, string>();
        if (!File.Exists(ResultsPath)) return done;
        foreach (var line in File.ReadAllLines(ResultsPath))
        {
            var parts = line.Split('\t');
            if (parts.Length == 2 && int.TryParse(parts[0], CultureInfo.InvariantCulture, out int i) && File.Exists(ImagePath(i))) done[i] = parts[1];
        }
        File.WriteAllLines(ResultsPath, done.OrderBy(d => d.Key).Select(d => $"{d.Key.ToString(CultureInfo.InvariantCulture)}\t{d.Value}"));
        return done;
    }
}

/// <summary>The sidecar a job protects through refused a post: the job cannot go on, and the message says what the sidecar said.</summary>
public sealed class SidecarRefusedException(string message, Exception inner) : Exception(message, inner);
