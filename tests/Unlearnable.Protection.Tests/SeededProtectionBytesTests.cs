using System.Security.Cryptography;
using System.Text.Json;
using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Data;
using Unlearnable.Data.Synthetic;
using Unlearnable.Protection;
using Unlearnable.Protection.Robustness;
using Unlearnable.Training;
using static TorchSharp.torch;

namespace Unlearnable.Protection.Tests;

/// <summary>
/// Refactoring guard: seeded protection runs of every protector (dataset MEM with owners and platform
/// robustness, dataset UAP, the posts path, a batch with scratch surrogate steps and a sticky trigger)
/// must keep producing the very bytes recorded in Fixtures/Protection/seeded-bytes.json. A change that
/// is meant to alter protection regenerates the file (UNLEARNABLE_REGENERATE=path/to/that/file) and
/// says why in its commit. MKL picks its float kernels per CPU, and the surrogate steps of dataset MEM round
/// differently on some (two development machines of one kind gave two byte sets), so each entry lists the bytes
/// of every CPU it has been recorded on: UNLEARNABLE_RECORD_CPU=path/to/that/file adds this CPU's to an unchanged
/// protection.
/// </summary>
public class SeededProtectionBytesTests
{
    static readonly string Fixture = Path.Combine(AppContext.BaseDirectory, "Fixtures", "Protection", "seeded-bytes.json");
    static readonly TriggerVocabulary Vocabulary = TriggerVocabulary.FromWords("w", ["apple", "river", "quiet", "seven", "purple", "window"]);

    static readonly ProtectionOptions Options = new()
    {
        Rounds = 2, SurrogateSteps = 2, PgdSteps = 2, BatchSize = 4, TriggerLength = 2, TriggerRounds = 1, TopK = 3,
        UserShare = 0.5, RobustTo = TransformSet.Platform, StopLoss = 0, Seed = 5,
    };

    static List<CaptionedImage> Items()
    {
        var items = SyntheticScenes.Generate(8, seed: 14, testImages: 0, size: 64).Items
            .Select((item, i) => item with { Owner = i switch { < 3 => "ada", < 6 => "bo", _ => null } }).ToList();
        items[1] = items[1] with { Image = Grey(items[1].Image) };
        return items;
    }

    static ImageSource Grey(ImageSource colour)
    {
        using var bitmap = SkiaSharp.SKBitmap.Decode(colour.ReadBytes());
        for (int y = 0; y < bitmap.Height; y++)
            for (int x = 0; x < bitmap.Width; x++)
            {
                var c = bitmap.GetPixel(x, y);
                byte v = (byte)((c.Red + c.Green + c.Blue) / 3);
                bitmap.SetPixel(x, y, new SkiaSharp.SKColor(v, v, v));
            }
        using var png = bitmap.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100);
        return new MemoryImage(colour.Name + "-grey", png.ToArray());
    }

    static ClipModel Surrogate()
    {
        TorchRuntime.Seed(17);
        return new ClipModel(ClipPresets.Get("tiny"));
    }

    static string Hash(byte[] bytes) => Convert.ToHexString(SHA256.HashData(bytes));
    static string HashFile(string path) => Hash(File.ReadAllBytes(path));

    static string HashTriggers(TriggerTable table)
    {
        var path = Path.Combine(Directory.CreateDirectory(TestFolders.New()).FullName, "triggers.bin");
        table.Save(path);
        return HashFile(path);
    }

    static Dictionary<string, string> Produce()
    {
        var produced = new Dictionary<string, string>();
        var items = Items();

        var mem = TestFolders.New();
        using (var surrogate = Surrogate())
        {
            var result = new DatasetProtector(surrogate, items, new ImageTensors(64), Options, Vocabulary, CPU, mem).Run();
            result.Noise.Dispose();
            produced["dataset-mem/noise"] = HashFile(Path.Combine(mem, "noise.bin"));
            produced["dataset-mem/user-noise"] = HashFile(Path.Combine(mem, "user-noise.bin"));
            produced["dataset-mem/triggers"] = HashTriggers(result.Triggers!);
        }

        var uap = TestFolders.New();
        using (var surrogate = Surrogate())
        {
            new DatasetProtector(surrogate, items, new ImageTensors(64), Options with { Method = ProtectionMethod.Uap, UserShare = 0 }, Vocabulary, CPU, uap).Run().Noise.Dispose();
            produced["dataset-uap/noise"] = HashFile(Path.Combine(uap, "noise.bin"));
        }

        var posts = TestFolders.New();
        using (var surrogate = Surrogate())
        {
            var result = new PostBatches(surrogate, Options, Vocabulary, CPU) { BatchSize = 3, Rounds = 2 }.Protect(items, new ImageTensors(64), posts);
            result.Noise.Dispose();
            produced["posts/noise"] = HashFile(Path.Combine(posts, "post-noise.bin"));
            produced["posts/user-noise"] = HashFile(Path.Combine(posts, "post-user-noise.bin"));
            produced["posts/triggers"] = HashTriggers(result.Triggers!);
        }

        using (var surrogate = Surrogate())
        {
            var clean = PixelSpace.Unnormalize(new ImageTensors(64).Batch(items.Take(5).Select(p => p.Image).ToList(), CPU));
            int[] sticky = [Vocabulary.Tokens[0], Vocabulary.Tokens[1]];
            var batch = new BatchProtector(surrogate, Options with { UserShare = 0 }, Vocabulary, CPU)
                .Protect(clean, items.Take(5).Select(p => p.Captions[0]).ToList(), rounds: 2, scratchSurrogateSteps: 2, fixedTriggers: [null, sticky, null, null, null]);
            produced["batch-scratch/delta"] = Hash(batch.Delta.contiguous().bytes.ToArray());
            produced["batch-scratch/triggers"] = Hash(batch.Triggers.SelectMany(t => t).SelectMany(BitConverter.GetBytes).ToArray());
        }
        return produced;
    }

    [Fact]
    public void EveryProtectorKeepsItsSeededBytes()
    {
        var produced = Produce();
        var recorded = JsonSerializer.Deserialize<Dictionary<string, List<string>>>(File.ReadAllText(Fixture))!;
        if (Environment.GetEnvironmentVariable("UNLEARNABLE_REGENERATE") is { Length: > 0 } target)
            Write(target, produced.ToDictionary(p => p.Key, p => new List<string> { p.Value }));
        if (Environment.GetEnvironmentVariable("UNLEARNABLE_RECORD_CPU") is { Length: > 0 } cpu)
            Write(cpu, recorded.ToDictionary(r => r.Key, r => r.Value.Union([produced[r.Key]]).ToList()));
        Assert.Equal(recorded.Keys.Order(), produced.Keys.Order());
        var changed = recorded.Keys.Where(k => !recorded[k].Contains(produced[k])).ToList();
        Assert.True(changed.Count == 0, $"seeded protection bytes changed: {string.Join(", ", changed)} (on a CPU whose kernels round differently and an unchanged protection, record its bytes with UNLEARNABLE_RECORD_CPU)");
    }

    static void Write(string path, Dictionary<string, List<string>> hashes) =>
        File.WriteAllText(path, JsonSerializer.Serialize(hashes, new JsonSerializerOptions { WriteIndented = true }) + "\n");
}
