using System.Diagnostics;
using Grpc.Core;
using SkiaSharp;
using Unlearnable.ClientSample;
using Unlearnable.Contracts.V1;

namespace Unlearnable.LoadTest;

public sealed record FloodSettings(string Address, string? ApiKey, int Streams, int PostsPerStream, int UnaryPosts, double Megapixels, int? ServerPid);

/// <summary>What a flood got back: every post should have an answer (a result or a per-post status) and no stream should end in an error.</summary>
public sealed record FloodReport(int Posts, int Results, IReadOnlyDictionary<string, int> RefusedByStatus, int Unanswered, int StreamsEndedInError,
    double Seconds, int ImageBytes, double? ServerPeakMiB)
{
    public override string ToString() =>
        $"flood: {Posts} posts of {ImageBytes / 1e6:F1} MB in {Seconds:F1} s: {Results} protected, refused {(RefusedByStatus.Count == 0 ? "none" : string.Join(", ", RefusedByStatus.Select(e => $"{e.Key} {e.Value}")))}, " +
        $"unanswered {Unanswered}, streams ended in error {StreamsEndedInError}" + (ServerPeakMiB is { } peak ? $"; server peak memory {peak:F0} MiB" : "");
}

/// <summary>
/// Many streams sending many large photos without waiting for answers, plus many unary posts
/// at once: the upload path under a hostile or broken client. Loopback only.
/// </summary>
public static class FloodRun
{
    public static async Task<FloodReport> RunAsync(FloodSettings settings, CancellationToken cancel = default)
    {
        if (!new Uri(settings.Address).IsLoopback) throw new ArgumentException("the flood only targets loopback addresses");
        using var client = new SidecarClient(settings.Address, settings.ApiKey);
        var photo = GrainyJpeg(settings.Megapixels);
        var runId = Guid.NewGuid().ToString("N")[..8];
        var refused = new Dictionary<string, int>();
        int results = 0, unanswered = 0, streamErrors = 0;
        var gate = new object();
        void Count(string? status)
        {
            lock (gate)
            {
                if (status is null) results++;
                else refused[status] = refused.GetValueOrDefault(status) + 1;
            }
        }
        ProtectRequest Post(string user, string post) => new()
        {
            UserId = user, PostId = post, Image = Google.Protobuf.ByteString.CopyFrom(photo), Caption = $"flood {post}",
        };
        var clock = Stopwatch.StartNew();

        async Task Stream(int s)
        {
            using var call = client.Raw.ProtectStream(client.Headers, cancellationToken: cancel);
            var sending = Task.Run(async () =>
            {
                for (int i = 0; i < settings.PostsPerStream; i++) await call.RequestStream.WriteAsync(Post($"flood-{runId}-s{s}", $"{i}"));
                await call.RequestStream.CompleteAsync();
            });
            int answered = 0;
            try
            {
                await foreach (var response in call.ResponseStream.ReadAllAsync(cancel))
                {
                    answered++;
                    Count(response.Error is null ? null : ((StatusCode)response.Error.Code).ToString());
                }
                await sending;
            }
            catch (RpcException)
            {
                lock (gate) streamErrors++;
            }
            lock (gate) unanswered += settings.PostsPerStream - answered;
        }

        async Task Unary(int u)
        {
            try
            {
                await client.Raw.ProtectAsync(Post($"flood-{runId}-u{u}", "0"), client.Headers, cancellationToken: cancel);
                Count(null);
            }
            catch (RpcException e) { Count(e.StatusCode.ToString()); }
        }

        await Task.WhenAll(Enumerable.Range(0, settings.Streams).Select(Stream).Concat(Enumerable.Range(0, settings.UnaryPosts).Select(Unary)));
        return new FloodReport(settings.Streams * settings.PostsPerStream + settings.UnaryPosts, results, refused, unanswered, streamErrors,
            clock.Elapsed.TotalSeconds, photo.Length, settings.ServerPid is { } pid ? ServerMemory.Read(pid, "VmHWM") : null);
    }

    /// <summary>A phone-like JPEG: a gradient under per-pixel sensor grain (which makes it several MB at 12 MP).</summary>
    public static byte[] GrainyJpeg(double megapixels)
    {
        int width = (int)Math.Sqrt(megapixels * 1e6 * 4 / 3), height = width * 3 / 4;
        using var bitmap = new SKBitmap(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        var pixels = new byte[width * height * 4];
        var random = new Random(17);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int i = (y * width + x) * 4, grain = random.Next(-24, 25);
                pixels[i] = (byte)Math.Clamp(40 + 180 * x / width + grain, 0, 255);
                pixels[i + 1] = (byte)Math.Clamp(90 + 100 * y / height + grain, 0, 255);
                pixels[i + 2] = (byte)Math.Clamp(160 - 80 * x / width + grain, 0, 255);
                pixels[i + 3] = 255;
            }
        System.Runtime.InteropServices.Marshal.Copy(pixels, 0, bitmap.GetPixels(), pixels.Length);
        using var image = SKImage.FromBitmap(bitmap);
        return image.Encode(SKEncodedImageFormat.Jpeg, 92).ToArray();
    }
}
