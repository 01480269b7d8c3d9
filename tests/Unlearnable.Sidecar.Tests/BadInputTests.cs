using Unlearnable.Imaging;
using System.Diagnostics;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Health.V1;
using SkiaSharp;
using Unlearnable.Contracts.V1;

namespace Unlearnable.Sidecar.Tests;

/// <summary>Every kind of bad input against the running server: a clear status and message, and the server stays healthy.</summary>
[Collection("sidecar")]
[Trait("Kind", "Process")]
public class BadInputTests(SharedSidecar shared) : IClassFixture<SharedSidecar>
{
    SidecarServer Server => shared.Server;

    public static TheoryData<string, string, StatusCode, string> Cases => new()
    {
        { "empty bytes", "empty", StatusCode.InvalidArgument, "image is empty" },
        { "random bytes", "random", StatusCode.InvalidArgument, "not JPEG, PNG or WebP" },
        { "truncated JPEG", "truncated-jpeg", StatusCode.InvalidArgument, "truncated" },
        { "truncated PNG", "truncated-png", StatusCode.InvalidArgument, "truncated" },
        { "PNG claiming 50,000 × 50,000", "huge-header", StatusCode.InvalidArgument, "50000x50000 pixels; the limits are" },
        { "over the image byte limit", "too-big", StatusCode.InvalidArgument, "the limit is 33,554,432" },
        { "over the message size limit", "huge-message", StatusCode.ResourceExhausted, "exceeds the maximum configured message size" },
        { "animated GIF", "gif", StatusCode.InvalidArgument, "not JPEG, PNG or WebP" },
        { "animated WebP", "animated-webp", StatusCode.InvalidArgument, "animated" },
        { "animated PNG", "apng", StatusCode.InvalidArgument, "animated (2 frames)" },
        { "100 KB caption", "long-caption", StatusCode.InvalidArgument, "caption is 102,400 bytes of UTF-8; the limit is 2,000" },
        { "invalid UTF-8 caption", "bad-utf8", StatusCode.InvalidArgument, "message is malformed: String is invalid UTF-8" },
        { "unknown vocabulary", "vocabulary", StatusCode.InvalidArgument, "options.vocabulary 'klingon' is unknown" },
        { "epsilon too large", "epsilon", StatusCode.InvalidArgument, "outside the allowed range [2, 16]" },
        { "trigger too long", "trigger", StatusCode.InvalidArgument, "options.trigger_length 99 is outside 1..8" },
        { "unknown output format", "format", StatusCode.InvalidArgument, "options.output_format 9 is unknown" },
        { "unknown priority", "priority", StatusCode.InvalidArgument, "options.priority 7 is unknown" },
        { "queue timeout beyond a day", "queue-timeout", StatusCode.InvalidArgument, "options.queue_timeout_ms 4294967295 is above 86,400,000" },
        { "unknown timeout action", "timeout-action", StatusCode.InvalidArgument, "options.timeout_action 5 is unknown" },
        { "unknown field", "unknown-field", StatusCode.InvalidArgument, "fields this server does not know" },
        { "missing user", "no-user", StatusCode.InvalidArgument, "user_id is required" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task IsRefusedClearlyAndTheServerStaysHealthy(string name, string kind, StatusCode expected, string message)
    {
        var e = await Assert.ThrowsAsync<RpcException>(async () => await SendRaw(Build(kind)));
        Assert.True(expected == e.StatusCode, $"{name}: {e.StatusCode} {e.Status.Detail}");
        Assert.True(e.Status.Detail.Contains(message, StringComparison.Ordinal), $"{name}: \"{e.Status.Detail}\" does not say \"{message}\"");
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, await Server.HealthAsync());
    }

    [Fact]
    public async Task RefusalsCarryABadRequestDetailNamingTheField()
    {
        var e = await Assert.ThrowsAsync<RpcException>(async () => await SendRaw(Build("epsilon")));
        var status = e.GetRpcStatus();
        Assert.NotNull(status);
        var violation = Assert.Single(status!.GetDetail<Google.Rpc.BadRequest>()!.FieldViolations);
        Assert.Equal("options.epsilon", violation.Field);
        Assert.Contains("outside the allowed range", violation.Description);
    }

    [Theory]
    [InlineData(SKColorType.Gray8, SKAlphaType.Opaque)]
    [InlineData(SKColorType.Rgba8888, SKAlphaType.Unpremul)]
    [InlineData(SKColorType.Rgba16161616, SKAlphaType.Unpremul)]
    public async Task GreyAlphaAndSixteenBitImagesAreProtected(SKColorType type, SKAlphaType alpha)
    {
        using var picture = TestImages.Picture(48, 40, type, alpha);
        var input = TestImages.Encode(picture, SKEncodedImageFormat.Png);
        var response = await Server.Client.ProtectAsync(new ProtectRequest
        {
            UserId = "formats", PostId = $"{type}-{alpha}", Image = ByteString.CopyFrom(input), Caption = "a picture",
        }, Server.Auth);
        using var a = Imaging.SafeImageDecoder.Decode(input);
        using var b = Imaging.SafeImageDecoder.Decode(response.Image.ToByteArray());
        Assert.InRange(PixelDifference.LInfinity(a, b), 1, 8);   // 0 would mean nothing was protected
    }

    [Fact]
    public async Task ACmykJpegIsConvertedAndProtected()
    {
        // Written by PIL as CMYK: a blue field with a red disc at (18, 18) and a green box at (37, 12).
        var input = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Fixtures", "cmyk.jpg"));
        var response = await Server.Client.ProtectAsync(new ProtectRequest { UserId = "formats", PostId = "cmyk", Image = ByteString.CopyFrom(input), Caption = "cmyk" }, Server.Auth);
        using var output = Imaging.SafeImageDecoder.Decode(response.Image.ToByteArray());
        using var decoded = Imaging.SafeImageDecoder.Decode(input);
        Assert.InRange(PixelDifference.LInfinity(decoded, output), 1, 8);
        static void Near(SKColor c, byte r, byte g, byte b) => Assert.True(Math.Abs(c.Red - r) < 40 && Math.Abs(c.Green - g) < 40 && Math.Abs(c.Blue - b) < 40, $"{c} is not near ({r}, {g}, {b})");
        Near(output.GetPixel(18, 18), 220, 40, 40);
        Near(output.GetPixel(37, 12), 20, 160, 60);
        Near(output.GetPixel(4, 36), 30, 120, 200);
    }

    byte[] Build(string kind)
    {
        var jpeg = TestImages.Jpeg(64, 48);
        var png = TestImages.Png(64, 48);
        var request = new ProtectRequest { UserId = "mallory", PostId = "bad-" + kind, Image = ByteString.CopyFrom(jpeg), Caption = "a caption" };
        switch (kind)
        {
            case "empty": request.Image = ByteString.Empty; break;
            case "random": request.Image = ByteString.CopyFrom(Enumerable.Range(0, 5000).Select(i => (byte)(i * 7919 % 251)).ToArray()); break;
            case "truncated-jpeg": request.Image = ByteString.CopyFrom(jpeg.AsSpan(0, jpeg.Length / 2)); break;
            case "truncated-png": request.Image = ByteString.CopyFrom(png.AsSpan(0, png.Length / 2)); break;
            case "huge-header": request.Image = ByteString.CopyFrom(TestImages.PngHeaderClaiming(50_000, 50_000)); break;
            case "too-big": request.Image = ByteString.CopyFrom(jpeg.Concat(new byte[(32 << 20) + 1000]).ToArray()); break;
            case "huge-message": request.Image = ByteString.CopyFrom(new byte[40 << 20]); break;
            case "gif": request.Image = ByteString.CopyFrom("GIF89a"u8.ToArray().Concat(new byte[64]).ToArray()); break;
            case "animated-webp": request.Image = ByteString.CopyFrom(AnimatedWebp()); break;
            case "apng": request.Image = ByteString.CopyFrom(AnimatedPng(png)); break;
            case "long-caption": request.Caption = new string('a', 100 * 1024); break;
            case "vocabulary": request.Options = new ProtectOptions { Vocabulary = "klingon" }; break;
            case "epsilon": request.Options = new ProtectOptions { Epsilon = 64 }; break;
            case "trigger": request.Options = new ProtectOptions { TriggerLength = 99 }; break;
            case "format": request.Options = new ProtectOptions { OutputFormat = (ImageFormat)9 }; break;
            case "priority": request.Options = new ProtectOptions { Priority = (Priority)7 }; break;
            case "queue-timeout": request.Options = new ProtectOptions { QueueTimeoutMs = uint.MaxValue }; break;
            case "timeout-action": request.Options = new ProtectOptions { QueueTimeoutMs = 100, TimeoutAction = (TimeoutAction)5 }; break;
            case "no-user": request.UserId = ""; break;
        }
        var bytes = request.ToByteArray();
        if (kind == "bad-utf8") bytes = WithRawCaption(request, [0x61, 0xC3, 0x28, 0xFF, 0x62]);
        if (kind == "unknown-field") bytes = bytes.Concat(new byte[] { 0xF8, 0x06, 0x01 }).ToArray();   // field 111, varint 1
        return bytes;
    }

    // The caption field (4) written by hand, since a C# string cannot hold invalid UTF-8.
    static byte[] WithRawCaption(ProtectRequest request, byte[] caption)
    {
        var withoutCaption = request.Clone();
        withoutCaption.Caption = "";
        using var stream = new MemoryStream();
        var output = new CodedOutputStream(stream);
        withoutCaption.WriteTo(output);
        output.WriteTag(4, WireFormat.WireType.LengthDelimited);
        output.WriteBytes(ByteString.CopyFrom(caption));
        output.Flush();
        return stream.ToArray();
    }

    /// <summary>Two-frame animated WebP, encoded by hand (VP8L frames from Skia's lossless encoder).</summary>
    static byte[] AnimatedWebp()
    {
        using var frame = TestImages.Picture(16, 16);
        using var pixmap = frame.PeekPixels();
        var still = pixmap.Encode(new SKWebpEncoderOptions(SKWebpEncoderCompression.Lossless, 100))!.ToArray();
        var vp8l = still.AsSpan(12).ToArray();                                   // the VP8L chunk after "RIFF....WEBP"
        var chunks = new List<byte>();
        chunks.AddRange(Chunk("VP8X", [0x02, 0, 0, 0, 15, 0, 0, 15, 0, 0]));    // animation flag, canvas 16×16
        chunks.AddRange(Chunk("ANIM", [0, 0, 0, 0, 0, 0]));
        for (int i = 0; i < 2; i++)
            chunks.AddRange(Chunk("ANMF", new byte[] { 0, 0, 0, 0, 0, 0, 15, 0, 0, 15, 0, 0, 100, 0, 0, 0 }.Concat(vp8l).ToArray()));
        var body = "WEBP"u8.ToArray().Concat(chunks).ToArray();
        return "RIFF"u8.ToArray().Concat(BitConverter.GetBytes(body.Length)).Concat(body).ToArray();

        static byte[] Chunk(string fourCc, byte[] payload) =>
            System.Text.Encoding.ASCII.GetBytes(fourCc).Concat(BitConverter.GetBytes(payload.Length)).Concat(payload).Concat(payload.Length % 2 == 1 ? new byte[1] : []).ToArray();
    }

    /// <summary>
    /// A PNG with an acTL chunk declaring 2 frames after its header, as an APNG starts; its still image doubles as the
    /// first frame, which is what a decoder without APNG support shows.
    /// </summary>
    static byte[] AnimatedPng(byte[] png)
    {
        byte[] body = [.. "acTL"u8, 0, 0, 0, 2, 0, 0, 0, 0];   // 2 frames, played forever
        byte[] chunk = [0, 0, 0, 8, .. body, .. BigEndian(Crc32(body))];
        const int afterHeader = 8 + 25;   // the signature, then IHDR: length, type, 13 bytes, CRC
        return [.. png.AsSpan(0, afterHeader), .. chunk, .. png.AsSpan(afterHeader)];

        static byte[] BigEndian(uint v) => [(byte)(v >> 24), (byte)(v >> 16), (byte)(v >> 8), (byte)v];
        static uint Crc32(byte[] data)   // PNG's CRC (ISO 3309), bit by bit
        {
            uint crc = 0xFFFFFFFF;
            foreach (var b in data)
            {
                crc ^= b;
                for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? 0xEDB88320 ^ (crc >> 1) : crc >> 1;
            }
            return ~crc;
        }
    }

    /// <summary>Sends pre-encoded request bytes through the real Protect method (no client-side validation).</summary>
    async Task<byte[]> SendRaw(byte[] request)
    {
        var method = new Method<byte[], byte[]>(MethodType.Unary, "unlearnable.v1.ProtectionService", "Protect",
            Marshallers.Create(b => b, b => b), Marshallers.Create(b => b, b => b));
        var invoker = Server.Channel.CreateCallInvoker();
        return await invoker.AsyncUnaryCall(method, null, new CallOptions(Server.Auth), request);
    }
}
