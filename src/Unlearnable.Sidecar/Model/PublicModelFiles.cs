using Unlearnable.Clip.Checkpoints;
using TorchSharp;
using Unlearnable.Clip.Model;
using static TorchSharp.torch;

namespace Unlearnable.Sidecar.Model;

/// <summary>
/// Where a release of the public model comes from, the first that has it: the folder prepared before start
/// (<see cref="ModelOptions.PreparedDirectory"/>: the image's own, or a volume an init container filled), then the cache
/// beside the database, else it is trained now and saved into that cache. A pod whose model was prepared starts in
/// seconds; one that trains (and hardens) the default members takes about 13 minutes of 2 cores, exactly when an autoscaler needs it.
/// Files are named by <see cref="Protection.PublicModel.FileName"/>, so a folder prepared for other settings is never mistaken for these.
/// </summary>
public sealed class PublicModelFiles(ModelOptions config, string cacheFolder, ILogger log)
{
    /// <summary>The member's recipe and architecture.</summary>
    (ClipConfig Preset, Protection.PublicModel Recipe) Of(MemberOptions member) => (member.PublicPreset, config.PublicModel(config.ReleaseOf(member)));

    /// <summary>
    /// The member's weights: prepared, cached, or trained now and cached; with <see cref="ModelOptions.Hardening"/>, the
    /// hardened copy, prepared, cached, or made now from those weights and cached.
    /// </summary>
    public ClipModel Load(MemberOptions member, Device device, CancellationToken cancel)
    {
        var (preset, recipe) = Of(member);
        string name = recipe.FileName(preset);   // once: with faces it hashes every photo
        if (config.HardeningSettings() is not { } hardening) return LoadOrTrain(name, preset, recipe, device, cancel);
        string hardenedName = hardening.FileName(name);
        if (Find(hardenedName) is { } found) return Loaded(found, preset, device);
        var model = LoadOrTrain(name, preset, recipe, device, cancel);
        try
        {
            HardenInto(model, Path.Combine(cacheFolder, hardenedName), recipe, hardening, device, cancel);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    string? Find(string name) => new[] { config.PreparedDirectory, cacheFolder }.Where(f => !string.IsNullOrWhiteSpace(f))
        .Select(folder => Path.Combine(folder!, name)).FirstOrDefault(File.Exists);

    ClipModel LoadOrTrain(string name, ClipConfig preset, Protection.PublicModel recipe, Device device, CancellationToken cancel) =>
        Find(name) is { } found ? Loaded(found, preset, device)
            : TrainInto(Path.Combine(cacheFolder, name), preset, recipe, device, cancel);   // replicas may share the folder

    ClipModel Loaded(string found, ClipConfig preset, Device device)
    {
        log.LogInformation("Loading the public model from {Path}", found);
        var loaded = ClipCheckpoint.Load(found, device);
        if (loaded.Config.Name == preset.Name && loaded.Config.QuickGelu == preset.QuickGelu) return loaded;
        loaded.Dispose();   // a file under this recipe's name holding another architecture: never protect against it
        throw new InvalidOperationException($"{found} holds a {loaded.Config.Name} model, not the {preset.Name} its name says; remove it or prepare the folder again");
    }

    /// <summary>
    /// Makes sure the cache folder itself holds every public-model member's weights (training those it lacks; a prepared
    /// folder elsewhere is not borrowed from) and returns their paths; checkpoints are loaded from their own paths at
    /// start and only checked to exist.
    /// </summary>
    public IReadOnlyList<string> Prepare(Device device, CancellationToken cancel)
    {
        var written = new List<string>();
        foreach (var member in config.Surrogates())
        {
            if (!member.IsPublicModel)
            {
                if (!File.Exists(member.Checkpoint)) throw new FileNotFoundException($"the checkpoint {member.Checkpoint} does not exist", member.Checkpoint);
                log.LogInformation("{Checkpoint} is a checkpoint, loaded from its own path at start: nothing to prepare", member.Checkpoint);
                continue;
            }
            var (preset, recipe) = Of(member);
            var path = Path.Combine(cacheFolder, recipe.FileName(preset));
            var hardening = config.HardeningSettings();
            var hardenedPath = hardening is null ? null : Path.Combine(cacheFolder, hardening.FileName(Path.GetFileName(path)));
            if (File.Exists(path)) log.LogInformation("{Path} is already prepared", path);
            else
            {
                TrainInto(path, preset, recipe, device, cancel).Dispose();
                log.LogInformation("Prepared {Path}", path);
            }
            written.Add(path);
            if (hardenedPath is null) continue;
            if (File.Exists(hardenedPath)) log.LogInformation("{Path} is already prepared", hardenedPath);
            else
            {
                using var model = Loaded(path, preset, device);
                HardenInto(model, hardenedPath, recipe, hardening!, device, cancel);
                log.LogInformation("Prepared {Path}", hardenedPath);
            }
            written.Add(hardenedPath);
        }
        return written;
    }

    /// <summary>Hardens <paramref name="model"/> in place on the recipe's pairs and saves it at <paramref name="path"/> (atomically).</summary>
    void HardenInto(ClipModel model, string path, Protection.PublicModel recipe, Protection.Robustness.AdversarialHardening hardening, Device device, CancellationToken cancel)
    {
        log.LogInformation("Hardening the public {Preset} model, release {Release}: {Steps} adversarial steps at ε {Epsilon:G3}/255", model.Config.Name, recipe.Seed, hardening.Steps, hardening.Epsilon * 255);
        model.to(device);
        hardening.Harden(model, recipe, device, (step, loss) =>
        {
            if (hardening.IsReportStep(step)) log.LogInformation("Hardening release {Release}: step {Step}/{Steps}, loss {Loss:F3}", recipe.Seed, step + 1, hardening.Steps, loss);
        }, cancel);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        ClipCheckpoint.SaveAtomically(model, path);
    }

    /// <summary>Trains the recipe and saves it at <paramref name="path"/> (atomically: another process may be reading the folder).</summary>
    ClipModel TrainInto(string path, ClipConfig preset, Protection.PublicModel recipe, Device device, CancellationToken cancel)
    {
        log.LogInformation("Training the public {Preset} model, release {Release}, on {Data} for {Epochs} epochs", preset.Name, recipe.Seed, recipe.Describe(), recipe.Epochs);
        var model = recipe.Train(preset, device, onStep: p =>
        {
            if (p.Step == p.StepsPerEpoch) log.LogInformation("Public model release {Release}: epoch {Epoch}/{Epochs}, loss {Loss:F3}", recipe.Seed, p.Epoch, p.Epochs, p.Loss);
        }, cancel: cancel);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        ClipCheckpoint.SaveAtomically(model, path);
        return model;
    }
}
