using System.CommandLine;
using System.Diagnostics;
using Unlearnable.Data.Synthetic;
using Unlearnable.Imaging;
using Unlearnable.Protection;

namespace Unlearnable.Cli.Commands;

/// <summary>
/// The publishing side of a post at phone sizes: decode, model view, noise carried to full
/// resolution, bounded encode. Prints time and peak memory per megapixel (resident memory sampled
/// every 5 ms above the level before the post), answer size against the upload, and L∞.
/// </summary>
static class BenchPublishCommand
{
    public static Command Create()
    {
        var megapixels = new Option<int[]>("--megapixels") { Description = "Photo sizes to measure (4:3), in megapixels", DefaultValueFactory = _ => [12, 24, 48], AllowMultipleArgumentsPerToken = true };
        var format = new Option<OutputFormat>("--format") { Description = "Answer format: Jpeg (default: keeps the upload's tables), Png or WebpLossless", DefaultValueFactory = _ => OutputFormat.Jpeg };
        var quality = new Option<int?>("--quality") { Description = "JPEG quality of the answer (default: the upload's)" };
        var uploadQuality = new Option<int>("--upload-quality") { Description = "JPEG quality the phone saved the upload at", DefaultValueFactory = _ => 92 };
        var epsilon = new Option<int>("--epsilon") { Description = "Noise bound in 1/255", DefaultValueFactory = _ => 8 };
        var preset = SharedOptions.Preset(required: false);
        var quickGelu = SharedOptions.QuickGelu();
        var noise = new Option<BenchNoise>("--noise")
        {
            Description = "Pgd: what batch MEM makes for the photo on a fresh --preset surrogate (robust to platforms); Random: ±ε with a random sign per model pixel and channel (rougher); Luma: the same, equal in R, G, B",
            DefaultValueFactory = _ => BenchNoise.Pgd,
        };
        quality.Must(q => q is null or (>= 1 and <= 100), "--quality must be in 1..100");
        uploadQuality.Must(q => q is >= 1 and <= 100, "--upload-quality must be in 1..100");
        megapixels.Must(list => list.All(m => m is >= 1 and <= 50), "--megapixels must each be in 1..50");
        var command = new Command("publish", "Time and peak memory per megapixel of carrying noise to a phone-sized photo and encoding the answer")
            { megapixels, format, quality, uploadQuality, epsilon, preset, quickGelu, noise };
        command.SetAction(result => CommandErrors.Run(() =>
        {
            int bound = result.GetValue(epsilon);
            var kind = result.GetValue(noise);
            Clip.Runtime.TorchRuntime.Seed(0);   // the same surrogate, so the same noise, every run
            using var model = new Clip.Model.ClipModel(SharedOptions.Architecture(result, preset, quickGelu));
            int size = model.Config.Vision.ImageSize;
            var encoding = new OutputEncoding(result.GetValue(format), result.GetValue(quality));
            Console.WriteLine($"answer {encoding.Format}{(encoding.JpegQuality is { } q ? $" q{q}" : "")}, ε {bound}/255, {kind} noise at {size}px, " +
                              $"uploads: grainy 4:3 JPEGs at q{result.GetValue(uploadQuality)}");
            Console.WriteLine("   MP  upload MB  answer/upload  L∞  no-noise  decode s  map s  encode s  total s  s/MP   peak MB  MB/MP");
            foreach (int mp in result.GetValue(megapixels)!)
            {
                int height = (int)Math.Round(Math.Sqrt(mp * 1e6 * 3 / 4)), width = height * 4 / 3;
                var upload = PhonePhoto.Jpeg(width, height, result.GetValue(uploadQuality), seed: mp);
                var limits = new ImageLimits(long.MaxValue, 60_000_000);
                sbyte[] delta;
                using (var photo = SafeImageDecoder.Decode(upload, limits))
                    delta = kind == BenchNoise.Pgd ? PgdNoise(model, ClipPreprocess.ToChw01(photo, size), bound) : Noise(size, bound, kind == BenchNoise.Luma);
                using var peak = new PeakMemory();
                var clock = Stopwatch.StartNew();
                using var original = SafeImageDecoder.Decode(upload, limits);
                var view = ClipPreprocess.ToChw01(original, size);
                var decoded = clock.Elapsed;
                using var perturbed = NoiseMapping.Apply(original, delta, size);
                var mapped = clock.Elapsed;
                var published = BoundedEncoder.Encode(original, perturbed, encoding, bound, upload);
                var total = clock.Elapsed;
                long peakBytes = peak.Stop();
                GC.KeepAlive(view);
                Console.WriteLine($"{width * (long)height / 1e6,5:F1}  {upload.Length / 1e6,9:F1}  {(double)published.Bytes.Length / upload.Length,13:F2}  {published.LInfinity,3}  {published.SilencedShare,8:P1}  " +
                                  $"{decoded.TotalSeconds,8:F2}  {(mapped - decoded).TotalSeconds,5:F2}  {(total - mapped).TotalSeconds,8:F2}  {total.TotalSeconds,7:F2}  " +
                                  $"{total.TotalSeconds / mp,4:F2}  {peakBytes / 1e6,8:F0}  {peakBytes / 1e6 / mp,5:F1}" +
                                  (published.Format == encoding.Format ? "" : $"  (answered as {published.Format})"));
            }
            return 0;
        }));
        return command;
    }

    // Batch MEM (one round, robust to platforms) for the photo plus seven synthetic scenes as the rest of its batch.
    static sbyte[] PgdNoise(Clip.Model.ClipModel model, float[] photo01, int bound)
    {
        int size = model.Config.Vision.ImageSize, plane = 3 * size * size;
        var others = SyntheticScenes.Generate(7, seed: 3, testImages: 0, size: size).Items;
        var pixels = photo01.Concat(others.SelectMany(o =>
        {
            using var scene = SafeImageDecoder.Decode(o.Image.ReadBytes());
            return ClipPreprocess.ToChw01(scene, size);
        })).ToArray();
        var options = StrengthLevel.Default(ProtectionStrength.Medium).PostOptions(bound, StrengthLevel.DefaultTriggerLength, seed: 0) with { BatchSize = 8 };
        using var scope = TorchSharp.torch.NewDisposeScope();
        var clean = TorchSharp.torch.tensor(pixels, [8, 3, size, size]);
        var captions = new[] { "a walk by the sea" }.Concat(others.Select(o => o.Captions[0])).ToList();
        var delta = new BatchProtector(model, options, TriggerVocabulary.CommonWords, TorchSharp.torch.CPU).Protect(clean, captions).Delta;
        return delta[0].data<float>().ToArray().Select(v => (sbyte)Math.Clamp((int)MathF.Round(v * 255), -bound, bound)).ToArray();
    }

    // Model-resolution noise at the bound with a random sign per model pixel (and channel): rougher than PGD leaves it.
    static sbyte[] Noise(int size, int bound, bool luma)
    {
        int plane = size * size;
        var delta = new sbyte[3 * plane];
        var rng = new Random(1);
        for (int i = 0; i < delta.Length; i++)
            delta[i] = luma && i >= plane ? delta[i % plane] : (sbyte)(rng.Next(2) == 0 ? -bound : bound);
        return delta;
    }

    enum BenchNoise { Pgd, Random, Luma }

    /// <summary>Resident memory above the level at construction, sampled every 5 ms until stopped.</summary>
    sealed class PeakMemory : IDisposable
    {
        readonly long _baseline;
        long _peak;
        readonly CancellationTokenSource _stop = new();
        readonly Task _sampler;

        public PeakMemory()
        {
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
            _baseline = _peak = Resident();
            _sampler = Task.Run(async () =>
            {
                while (!_stop.IsCancellationRequested)
                {
                    long now = Resident();
                    if (now > Interlocked.Read(ref _peak)) Interlocked.Exchange(ref _peak, now);
                    try { await Task.Delay(5, _stop.Token); } catch (OperationCanceledException) { }
                }
            });
        }

        public long Stop()
        {
            _stop.Cancel();
            _sampler.Wait();
            return Math.Max(0, Interlocked.Read(ref _peak) - _baseline);
        }

        public void Dispose() => _stop.Dispose();

        static long Resident()
        {
            using var process = Process.GetCurrentProcess();
            return process.WorkingSet64;
        }
    }
}
