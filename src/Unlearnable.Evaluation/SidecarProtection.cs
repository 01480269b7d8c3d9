using System.Collections.Concurrent;
using System.Globalization;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Unlearnable.Contracts.V1;
using Unlearnable.Data;

namespace Unlearnable.Evaluation;

/// <summary>
/// The black-box path: every training pair is posted to a running sidecar's Protect, exactly as
/// a platform would, and the hacker trains on what came back. The post carries the image's first
/// caption; the trigger the sidecar chose is prefixed to all of the image's captions (one trigger
/// per image, as the sidecar publishes one caption per post). Posts already answered are kept in
/// the work folder, so an interrupted run only sends the rest; a few run at once so the sidecar can batch them.
/// </summary>
public sealed class SidecarProtection(ProtectionSpec spec, string workDir, int concurrency = 8)
{
    /// <summary>
    /// The sidecar user the posts are made as: one per work folder, so two jobs never collide on
    /// the sidecar's idempotent post ids, and a resumed job is the same user again.
    /// </summary>
    public static string UserIdFor(string workDir) =>
        "evaluation-" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(Path.GetFullPath(workDir))))[..12];

    public Action<int, int>? OnPost { get; init; }

    string ResultsPath => Path.Combine(workDir, "posts.tsv");

    public IReadOnlyList<CaptionedImage> Protect(IReadOnlyList<CaptionedImage> train, CancellationToken cancel)
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

        return train.Select((item, i) => item with
        {
            Image = new MemoryImage(item.Id, File.ReadAllBytes(ImagePath(i))),
            Captions = done[i].Length == 0 ? item.Captions : item.Captions.Select(c => done[i] + " " + c).ToList(),
        }).ToList();
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
                    UserId = UserIdFor(workDir), PostId = $"{i}-{item.Id}", Image = ByteString.CopyFrom(item.Image.ReadBytes()), Caption = item.Captions[0],
                    // With a strength the level's own ε applies; epsilon is for a sidecar at its default level (and in-process methods).
                    Options = new ProtectOptions { Epsilon = spec.Strength is null ? spec.Epsilon : 0, TriggerLength = spec.TriggerLength, TriggerPolicy = TriggerPolicy.PerPost, Strength = Strength() },
                };
                ProtectResponse response;
                try { response = client.Protect(request, headers, deadline: DateTime.UtcNow.AddMinutes(10), cancellationToken: cancel); }
                catch (RpcException e) when (e.StatusCode != StatusCode.Cancelled)
                {
                    throw new InvalidOperationException($"the sidecar at {spec.SidecarAddress} refused training image {item.Id}: {e.StatusCode} {e.Status.Detail}", e);
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

    ProtectionStrength Strength() => spec.Strength is null ? ProtectionStrength.Unspecified : ProtectionStage.Strength(spec.Strength) switch
    {
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
