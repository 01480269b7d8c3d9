using Google.Protobuf;
using Grpc.Core;
using SkiaSharp;
using Unlearnable.Contracts.V1;
using Unlearnable.Data.Synthetic;
using Unlearnable.Imaging;

namespace Unlearnable.Sidecar.Tests;

/// <summary>What users upload, through the real server: phone-sized grainy JPEGs, odd shapes, grey photos, every format, every strength.</summary>
[Collection("sidecar")]
[Trait("Kind", "Process")]
public class PublishReadyTests(SharedSidecar shared) : IClassFixture<SharedSidecar>
{
    SidecarServer Server => shared.Server;

    static ProtectRequest Post(string user, string post, byte[] image, ProtectOptions? options = null) =>
        new() { UserId = user, PostId = post, Image = ByteString.CopyFrom(image), Caption = "a walk by the sea", Options = options ?? new ProtectOptions() };

    [Theory]
    [InlineData(6000, 4000)]   // 24 MP
    [InlineData(8000, 6000)]   // 48 MP
    public async Task APhoneSizedGrainyJpegComesBackAsAJpegWithinEpsilonAndAboutItsSize(int width, int height)
    {
        var upload = PhonePhoto.Jpeg(width, height, quality: 92, seed: width);
        var response = await Server.Client.ProtectAsync(Post("phone", $"mp{width}", upload), Server.Auth, deadline: DateTime.UtcNow.AddMinutes(3));

        Assert.Equal(ImageFormat.Jpeg, response.ImageFormat);
        var answer = response.Image.ToByteArray();
        Assert.True(answer.Length <= 1.5 * upload.Length, $"answer {answer.Length:N0} bytes for a {upload.Length:N0}-byte upload");
        Assert.InRange(response.Quality.JpegQuality, 90, 94);
        using var original = SafeImageDecoder.Decode(upload, new ImageLimits(MaxPixels: 50_000_000));
        using var decoded = SafeImageDecoder.Decode(answer, new ImageLimits(MaxPixels: 50_000_000));
        Assert.Equal((width, height), (decoded.Width, decoded.Height));
        int linf = PixelDifference.LInfinity(original, decoded);
        Assert.InRange(linf, 1, 8);
        Assert.Equal(linf, response.Quality.Linf);
    }

    [Theory]
    [InlineData(12000, 1)]
    [InlineData(40, 3000)]
    public async Task AThinStripIsRefusedFromItsHeaderNamingTheLimit(int width, int height)
    {
        var strip = TestImages.PngHeaderClaiming(width, height);
        var e = await Assert.ThrowsAsync<RpcException>(async () => await Server.Client.ProtectAsync(Post("thin", $"t{width}", strip), Server.Auth));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("aspect ratio", e.Status.Detail);
        Assert.Contains("the limit is 16:1", e.Status.Detail);
    }

    [Fact]
    public async Task TheAnswerKeepsTheUploadsFormatUnlessAskedOtherwise()
    {
        using var picture = PhonePhoto.Render(300, 200, seed: 4);
        var uploads = new (string Name, byte[] Bytes, ImageFormat Expected)[]
        {
            ("png", ImageEncoding.Png(picture), ImageFormat.Png),
            ("jpeg", ImageEncoding.Jpeg(picture, 85), ImageFormat.Jpeg),
            ("webp", TestImages.Encode(picture, SKEncodedImageFormat.Webp, 80), ImageFormat.WebpLossless),
        };
        foreach (var (name, bytes, expected) in uploads)
        {
            var response = await Server.Client.ProtectAsync(Post("formats", name, bytes), Server.Auth);
            Assert.Equal(expected, response.ImageFormat);
            using var original = SafeImageDecoder.Decode(bytes);
            using var decoded = SafeImageDecoder.Decode(response.Image.ToByteArray());
            Assert.InRange(PixelDifference.LInfinity(original, decoded), 1, 8);
            Assert.Equal(expected == ImageFormat.Jpeg ? 85 : 0, response.Quality.JpegQuality);
        }

        // A PNG asked to come back as a JPEG at quality 80. A smooth picture can be: JPEG bytes, at least that
        // quality, within ε. A grainy one may not be at any quality (its own grain re-encoded can break ε): then it
        // comes back lossless, and says so. Noise that fills ε on every pixel and channel independently cannot be held
        // by JPEG even at quality 100 (it also comes back lossless), so these posts ask for ε 16, which the short test
        // optimisation fills less than half of.
        using var smooth = new SKBitmap(new SKImageInfo(300, 200, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        using (var canvas = new SKCanvas(smooth))
        using (var paint = new SKPaint { Shader = SKShader.CreateLinearGradient(new(0, 0), new(300, 200), [new SKColor(90, 140, 200), new SKColor(220, 180, 120)], SKShaderTileMode.Clamp) })
            canvas.DrawRect(0, 0, 300, 200, paint);
        foreach (var (name, png, smoothOnly) in new[] { ("smooth", ImageEncoding.Png(smooth), true), ("grainy", uploads[0].Bytes, false) })
        {
            var asked = await Server.Client.ProtectAsync(Post("formats-" + name, name + "-as-jpeg", png, new ProtectOptions { JpegQuality = 80, Epsilon = 16 }), Server.Auth);
            if (smoothOnly) Assert.Equal(ImageFormat.Jpeg, asked.ImageFormat);
            bool jpeg = asked.Image.Span[0] == 0xFF && asked.Image.Span[1] == 0xD8;
            Assert.Equal(jpeg ? ImageFormat.Jpeg : ImageFormat.Png, asked.ImageFormat);
            if (jpeg) Assert.InRange(asked.Quality.JpegQuality, 80, 100);
            using var original = SafeImageDecoder.Decode(png);
            using var decoded = SafeImageDecoder.Decode(asked.Image.ToByteArray());
            Assert.InRange(PixelDifference.LInfinity(original, decoded), 1, 16);
            Assert.Equal(asked.Quality.Linf, PixelDifference.LInfinity(original, decoded));
        }
    }

    [Theory]
    [InlineData("jpeg")]
    [InlineData("png")]
    public async Task AGreyPhotoStaysGrey(string format)
    {
        using var grey = PhonePhoto.Render(320, 243, seed: 8, grey: true);
        var upload = format == "png" ? ImageEncoding.Png(grey) : ImageEncoding.Jpeg(grey, 90);
        var response = await Server.Client.ProtectAsync(Post("grey", format, upload), Server.Auth);
        var answer = response.Image.ToByteArray();
        using (var codec = SKCodec.Create(SKData.CreateCopy(answer)))
            Assert.Equal(SKColorType.Gray8, codec.Info.ColorType);
        using var decoded = SafeImageDecoder.Decode(answer);
        Assert.True(ImageEncoding.IsGrey(decoded));
        using var original = SafeImageDecoder.Decode(upload);
        Assert.InRange(PixelDifference.LInfinity(original, decoded), 1, 8);
    }

    [Fact]
    public async Task EachStrengthHoldsItsBoundAndServerInfoListsThem()
    {
        var info = await Server.Client.GetServerInfoAsync(new GetServerInfoRequest(), Server.Auth);
        Assert.Equal([ProtectionStrength.Low, ProtectionStrength.Medium, ProtectionStrength.High], info.Strengths.Select(s => s.Strength));
        Assert.Equal([4.0, 8.0, 12.0], info.Strengths.Select(s => s.Epsilon));
        Assert.Empty(info.Strengths[0].RobustTo);
        Assert.Contains(info.Strengths[1].RobustTo, r => r.StartsWith("jpeg:60-95"));
        Assert.Equal(8, info.DefaultEpsilon);
        Assert.Equal(16, info.MaxImageAspectRatio);

        var upload = TestImages.Png(96, 72);
        using var original = SafeImageDecoder.Decode(upload);
        foreach (var (strength, bound) in new[] { (ProtectionStrength.Low, 4), (ProtectionStrength.High, 12) })
        {
            var response = await Server.Client.ProtectAsync(Post("strength", strength.ToString(), upload, new ProtectOptions { Strength = strength }), Server.Auth);
            using var decoded = SafeImageDecoder.Decode(response.Image.ToByteArray());
            Assert.InRange(PixelDifference.LInfinity(original, decoded), 1, bound);
            Assert.Equal(strength, response.Quality.Strength);
            Assert.Equal(info.Strengths.Single(s => s.Strength == strength).Rounds * info.Strengths.Single(s => s.Strength == strength).PgdSteps, response.Quality.PgdSteps);
        }
    }

    [Theory]
    [InlineData("strength", "options.strength")]
    [InlineData("quality", "options.jpeg_quality")]
    [InlineData("quality-for-png", "options.jpeg_quality")]
    public async Task BadPublishingOptionsAreRefusedNamingTheField(string kind, string field)
    {
        var options = kind switch
        {
            "strength" => new ProtectOptions { Strength = (ProtectionStrength)7 },
            "quality" => new ProtectOptions { JpegQuality = 101 },
            _ => new ProtectOptions { JpegQuality = 80, OutputFormat = ImageFormat.Png },
        };
        var e = await Assert.ThrowsAsync<RpcException>(async () => await Server.Client.ProtectAsync(Post("bad", kind, TestImages.Png(32, 32), options), Server.Auth));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Equal(field, Assert.Single(e.GetRpcStatus()!.GetDetail<Google.Rpc.BadRequest>()!.FieldViolations).Field);
    }

    [Fact]
    public async Task ALosslessAnswerOverTheAnswerLimitIsRefusedAndAJpegOneIsNot()
    {
        await using var server = await SidecarServer.StartAsync(new Dictionary<string, string?> { ["Sidecar:Limits:MaxAnswerBytes"] = "100000" });
        var upload = PhonePhoto.Jpeg(400, 300, quality: 85, seed: 2);
        var e = await Assert.ThrowsAsync<RpcException>(async () =>
            await server.Client.ProtectAsync(Post("big", "png", upload, new ProtectOptions { OutputFormat = ImageFormat.Png }), server.Auth));
        Assert.Equal(StatusCode.OutOfRange, e.StatusCode);
        Assert.Contains("100,000-byte answer limit", e.Status.Detail);
        var jpeg = await server.Client.ProtectAsync(Post("big", "jpeg", upload), server.Auth);
        Assert.Equal(ImageFormat.Jpeg, jpeg.ImageFormat);
        Assert.True(jpeg.Image.Length <= 100000);
    }
}
