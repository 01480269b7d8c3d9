using Google.Protobuf;
using Grpc.Core;
using Grpc.Health.V1;
using SkiaSharp;
using Unlearnable.Contracts.V1;
using Unlearnable.Imaging;
using Unlearnable.Protection;

namespace Unlearnable.Sidecar.Tests;

[Collection("sidecar")]
[Trait("Kind", "Process")]
public class ProtectTests(SharedSidecar shared) : IClassFixture<SharedSidecar>
{
    SidecarServer Server => shared.Server;

    static ProtectRequest Post(string user, string post, byte[] image, string caption = "a red circle next to a green square", ProtectOptions? options = null) =>
        new() { UserId = user, PostId = post, Image = ByteString.CopyFrom(image), Caption = caption, Options = options ?? new ProtectOptions() };

    [Fact]
    public async Task AProtectedPostIsUprightWithinEpsilonStrippedOfExifAndStartsWithItsTrigger()
    {
        var input = TestImages.JpegWithExif(120, 80);
        var response = await Server.Client.ProtectAsync(Post("alice", "p1", input), Server.Auth);

        Assert.Equal("p1", response.PostId);
        Assert.Equal(ImageFormat.Jpeg, response.ImageFormat);   // the upload's format
        var output = response.Image.ToByteArray();
        Assert.False(output.AsSpan().IndexOf("Exif"u8) >= 0, "the output carries EXIF");
        Assert.Equal([0xFF, 0xD8], output[..2]);
        using var upright = SafeImageDecoder.Decode(input);                 // the orientation-applied original
        using var decoded = SafeImageDecoder.Decode(output);
        Assert.Equal((80, 120), (upright.Width, upright.Height));          // orientation 6: rotated
        Assert.Equal((upright.Width, upright.Height), (decoded.Width, decoded.Height));
        int linf = PixelDifference.LInfinity(upright, decoded);
        Assert.InRange(linf, 1, 8);
        Assert.Equal(linf, response.Quality.Linf);
        Assert.True(response.Quality.PsnrDb > 30);
        Assert.Equal(Protection.StrengthLevel.DefaultTriggerLength, response.Trigger.Split(' ').Length);
        Assert.Equal(response.Trigger + " a red circle next to a green square", response.ProtectedCaption);
        Assert.True(response.Quality.BatchSize >= 1);
        Assert.True(response.Quality.PgdSteps > 0);
        Assert.False(response.Replayed);
    }

    [Fact]
    public async Task WebpLosslessOutputAndAChosenEpsilonAreHonoured()
    {
        var options = new ProtectOptions { OutputFormat = ImageFormat.WebpLossless, Epsilon = 4, TriggerLength = 2, Vocabulary = "full" };
        var input = TestImages.Png(64, 64);
        var response = await Server.Client.ProtectAsync(Post("bob", "w1", input, "sunset", options), Server.Auth);
        Assert.Equal(ImageFormat.WebpLossless, response.ImageFormat);
        Assert.Equal("RIFF", System.Text.Encoding.ASCII.GetString(response.Image.Span[..4]));
        using var a = SafeImageDecoder.Decode(input);
        using var b = SafeImageDecoder.Decode(response.Image.ToByteArray());
        Assert.InRange(PixelDifference.LInfinity(a, b), 1, 4);
        Assert.Equal(2, response.Trigger.Split(' ').Length);
    }

    [Fact]
    public async Task ARepeatedPostIdReturnsTheStoredResultAndADifferentPostUnderItIsRefused()
    {
        var request = Post("carol", "same", TestImages.Jpeg(90, 90));
        var first = await Server.Client.ProtectAsync(request, Server.Auth);
        var again = await Server.Client.ProtectAsync(request, Server.Auth);
        Assert.True(again.Replayed);
        Assert.Equal(first.Image, again.Image);
        Assert.Equal(first.ProtectedCaption, again.ProtectedCaption);

        var changed = request.Clone();
        changed.Caption = "a different caption";
        var e = await Assert.ThrowsAsync<RpcException>(async () => await Server.Client.ProtectAsync(changed, Server.Auth));
        Assert.Equal(StatusCode.AlreadyExists, e.StatusCode);
        Assert.Contains("post_id 'same'", e.Status.Detail);
    }

    [Fact]
    public async Task CallsWithoutAValidApiKeyAreUnauthenticatedButHealthStaysOpen()
    {
        var request = Post("dave", "k1", TestImages.Jpeg(40, 40));
        var missing = await Assert.ThrowsAsync<RpcException>(async () => await Server.Client.ProtectAsync(request));
        Assert.Equal(StatusCode.Unauthenticated, missing.StatusCode);
        Assert.Contains("x-api-key", missing.Status.Detail);
        var wrong = await Assert.ThrowsAsync<RpcException>(async () => await Server.Client.ProtectAsync(request, new Metadata { { "x-api-key", "nope" } }));
        Assert.Equal(StatusCode.Unauthenticated, wrong.StatusCode);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, await Server.HealthAsync());
    }

    [Fact]
    public async Task AStreamAnswersEveryPostByNameAndReportsABadOneWithoutEndingTheStream()
    {
        using var call = Server.Client.ProtectStream(Server.Auth);
        var ids = new[] { "s1", "s2", "bad", "s3" };
        foreach (var id in ids)
            await call.RequestStream.WriteAsync(Post("erin", id, id == "bad" ? [1, 2, 3, 4] : TestImages.Jpeg(70, 50), $"post {id}"));
        await call.RequestStream.CompleteAsync();
        var responses = new List<ProtectResponse>();
        await foreach (var r in call.ResponseStream.ReadAllAsync()) responses.Add(r);
        Assert.Equal(ids.Order(), responses.Select(r => r.PostId).Order());
        var bad = responses.Single(r => r.PostId == "bad");
        Assert.Equal((int)StatusCode.InvalidArgument, bad.Error.Code);
        Assert.Contains("not JPEG, PNG or WebP", bad.Error.Message);
        Assert.All(responses.Where(r => r.PostId != "bad"), r =>
        {
            Assert.Null(r.Error);
            Assert.StartsWith(r.Trigger + " post ", r.ProtectedCaption);
        });
    }

    [Fact]
    public async Task ServerInfoAndReflectionDescribeTheService()
    {
        var info = await Server.Client.GetServerInfoAsync(new GetServerInfoRequest(), Server.Auth);
        Assert.Equal(16, info.MaxEpsilon);
        Assert.Contains("tiny", info.Model);
        Assert.Equal(64, info.ImageSize);

        var reflection = new Grpc.Reflection.V1Alpha.ServerReflection.ServerReflectionClient(Server.Channel);
        using var call = reflection.ServerReflectionInfo();
        await call.RequestStream.WriteAsync(new Grpc.Reflection.V1Alpha.ServerReflectionRequest { ListServices = "" });
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext());
        var services = call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name).ToList();
        Assert.Contains("unlearnable.v1.ProtectionService", services);
        Assert.Contains("grpc.health.v1.Health", services);
    }

    static double Metric(string text, string series) =>
        text.Split('\n').Where(line => line.StartsWith(series + " ", StringComparison.Ordinal))
            .Select(line => double.Parse(line[(series.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture)).DefaultIfEmpty(0).Single();

    [Fact]
    public async Task MetricsAreServedOverHttp()
    {
        using var http = new HttpClient();
        var before = await http.GetStringAsync($"http://127.0.0.1:{Server.HttpPort}/metrics");
        await Server.Client.ProtectAsync(Post("frank", "m1", TestImages.Jpeg(50, 50)), Server.Auth);
        var text = await http.GetStringAsync($"http://127.0.0.1:{Server.HttpPort}/metrics");
        Assert.Contains("unlearnable_batch_size_count", text);
        Assert.Contains("unlearnable_optimise_seconds_sum", text);
        // Counted as inference servers count: the post, its batch, and both image stages of its pipeline.
        foreach (var series in new[] { "unlearnable_batch_executions_total", "unlearnable_batched_posts_total", "unlearnable_posts_total{status=\"OK\"}",
                     "unlearnable_codec_seconds_count{stage=\"decode\"}", "unlearnable_codec_seconds_count{stage=\"finish\"}" })
            Assert.True(Metric(text, series) >= Metric(before, series) + 1, $"{series} did not grow");
        Assert.Equal("\"SERVING\"", await http.GetStringAsync($"http://127.0.0.1:{Server.HttpPort}/healthz"));
    }
}
