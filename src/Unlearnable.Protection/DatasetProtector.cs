using Unlearnable.Clip.Text;
using System.Diagnostics;
using System.Text.Json;
using TorchSharp;
using Unlearnable.Clip.Checkpoints;
using Unlearnable.Clip.Model;
using Unlearnable.Clip.Runtime;
using Unlearnable.Data;
using Unlearnable.Training;
using static TorchSharp.torch;

namespace Unlearnable.Protection;

public sealed record ProtectionProgress(string Phase, int Round, int Rounds, int Batch, int Batches, double Loss);

/// <summary>What a finished (or stopped-early) run produced; the noise lives in <see cref="Noise"/>.</summary>
public sealed record ProtectionResult(NoiseStore Noise, TriggerTable? Triggers, IReadOnlyList<double> RoundLosses, TimeSpan PgdTime, TimeSpan TriggerTime, TimeSpan SurrogateTime);

/// <summary>
/// Dataset-level protection (EM, MEM): rounds of (1) surrogate steps on the protected pairs,
/// (2) one pass over the data where each batch gets, in MEM's first rounds, a HotFlip trigger
/// update, then PGD on its noise (with caption shuffling for MEM). Stops after the configured
/// rounds or once the protected loss is below the threshold. Everything is saved in the work
/// folder after every batch; running again with the same folder resumes where it stopped.
/// With <see cref="ProtectionOptions.UserShare"/> and owners in the data, each owner's photos also
/// share a pattern (<see cref="UserNoise"/>), kept beside the noise; the store holds what is published.
/// UAP is the one-pass adversarial baseline against a surrogate trained on clean data.
/// Against an ensemble every member is a surrogate: each takes its own steps on the protected pairs, and the noise
/// and triggers follow the members' mean loss.
/// </summary>
public sealed class DatasetProtector(IReadOnlyList<ClipModel> members, IReadOnlyList<CaptionedImage> items, ImageTensors pixels,
    ProtectionOptions options, TriggerVocabulary vocabulary, Device device, string workDir)
{
    public DatasetProtector(ClipModel surrogate, IReadOnlyList<CaptionedImage> items, ImageTensors pixels,
        ProtectionOptions options, TriggerVocabulary vocabulary, Device device, string workDir)
        : this([surrogate], items, pixels, options, vocabulary, device, workDir) { }

    public Action<ProtectionProgress>? OnProgress { get; init; }

    // Member 0 keeps the names runs had before ensembles, so those resume.
    string SurrogatePath(int member) => Path.Combine(workDir, $"surrogate{Suffix(member)}.safetensors");
    string OptimizerPath(int member) => Path.Combine(workDir, $"surrogate{Suffix(member)}.optim");
    string InitialSurrogatePath(int member) => Path.Combine(workDir, $"surrogate-initial{Suffix(member)}.safetensors");
    static string Suffix(int member) => member == 0 ? "" : $"-member{member}";
    string TriggerPath => Path.Combine(workDir, "triggers.bin");

    public ProtectionResult Run(CancellationToken cancel = default)
    {
        options.Validate(Surrogates.Checked(members)[0].Config.Text.ContextLength);
        if (items.Count < 2) throw new ArgumentException($"protection needs at least 2 images, got {items.Count}");
        if (pixels.ImageSize != members[0].Config.Vision.ImageSize)
            throw new ArgumentException($"pixels are {pixels.ImageSize}px but the surrogate reads {members[0].Config.Vision.ImageSize}px");
        Directory.CreateDirectory(workDir);

        var optionsJson = JsonSerializer.Serialize(options);
        string? surrogates = members.Count > 1 ? string.Join(",", members.Select(m => m.Config.Name)) : null;
        var state = ProtectionRunState.Load(workDir) ?? new ProtectionRunState(0, false, 0, [], false, optionsJson, Surrogates: surrogates);
        if (state.OptionsJson != optionsJson || state.Surrogates != surrogates)
            throw new RunConflictException($"{workDir} holds a run with other options or surrogates; use a new work folder or the same options and surrogates " +
                "(runs started before restarting the surrogate became the default need --restart-surrogate false).");
        var noise = NoiseStore.OpenOrCreate(Path.Combine(workDir, "noise.bin"), items.Count, pixels.ImageSize);
        using var owners = OwnerPatterns.Open(items, options, Path.Combine(workDir, "user-noise.bin"), pixels.ImageSize);
        var triggers = options.UsesTrigger ? new TriggerTable(items.Select(i => i.Captions.Count).ToList(), options.TriggerLength, TriggerTable.TheToken, options.TriggerPerImage) : null;
        if (triggers is not null && File.Exists(TriggerPath)) triggers.Load(TriggerPath);

        var updaters = members.Select((surrogate, m) =>
        {
            if (options.RestartSurrogate && !File.Exists(InitialSurrogatePath(m))) ClipCheckpoint.Save(surrogate, InitialSurrogatePath(m));
            var updater = new SurrogateUpdater(surrogate, options.SurrogateLearningRate, options.SurrogateWeightDecay);
            if (File.Exists(SurrogatePath(m)))
            {
                using var saved = ClipCheckpoint.Load(SurrogatePath(m), device);
                ClipCheckpoint.LoadStateDict(surrogate, saved.state_dict(), SurrogatePath(m));
                if (File.Exists(OptimizerPath(m))) updater.Load(OptimizerPath(m));
            }
            return updater;
        }).ToArray();

        var mem = new MemRound(members, options, vocabulary, device);
        var surrogateClock = new Stopwatch();
        var batches = ClipTrainer.BatchSizes(items.Count, options.BatchSize);
        int rounds = options.Method == ProtectionMethod.Uap ? 1 : options.Rounds;

        while (!state.Finished && state.Round < rounds)
        {
            int round = state.Round;
            if (!state.SurrogateDone)
            {
                for (int m = state.MembersTrained; m < members.Count; m++)
                {
                    if (options.RestartSurrogate && round > 0)
                    {
                        // Every round's surrogate starts from the same initial weights and fresh moments (see ProtectionOptions.RestartSurrogate).
                        using var initial = ClipCheckpoint.Load(InitialSurrogatePath(m), device);
                        ClipCheckpoint.LoadStateDict(members[m], initial.state_dict(), InitialSurrogatePath(m));
                        updaters[m].Dispose();
                        updaters[m] = new SurrogateUpdater(members[m], options.SurrogateLearningRate, options.SurrogateWeightDecay);
                    }
                    surrogateClock.Start();
                    if (options.Method != ProtectionMethod.Uap) SurrogateSteps(updaters[m], m, noise, triggers, round, cancel);
                    surrogateClock.Stop();
                    ClipCheckpoint.Save(members[m], SurrogatePath(m));
                    updaters[m].Save(OptimizerPath(m));
                    state = state with { MembersTrained = m + 1 };
                    state.Save(workDir);
                }
                state = state with { SurrogateDone = true, MembersTrained = 0 };
                state.Save(workDir);
            }

            var rng = new Random(Seeds.For(SeedStream.RoundOrder, options.Seed, round));
            var order = Enumerable.Range(0, items.Count).OrderBy(_ => rng.Next()).ToArray();
            // RoundLosses[round] is the running mean over the batches done so far (saved with NextBatch).
            double lossSum = state.NextBatch > 0 ? state.RoundLosses[round] * state.NextBatch : 0;
            int start = batches.Take(state.NextBatch).Sum();
            for (int b = state.NextBatch; b < batches.Count; b++)
            {
                cancel.ThrowIfCancellationRequested();
                var batch = order.Skip(start).Take(batches[b]).ToList();
                start += batches[b];
                double loss = ProtectBatch(batch, round, mem, noise, owners, triggers);
                lossSum += loss;
                noise.Flush();
                owners?.Flush();
                triggers?.Save(TriggerPath);
                var losses = state.RoundLosses.Take(round).Append(lossSum / (b + 1)).ToList();
                state = state with { NextBatch = b + 1, RoundLosses = losses };
                state.Save(workDir);
                OnProgress?.Invoke(new ProtectionProgress("noise", round + 1, rounds, b + 1, batches.Count, loss));
            }
            double roundLoss = lossSum / batches.Count;
            bool converged = options.Method != ProtectionMethod.Uap && roundLoss < options.StopLoss;
            state = state with { Round = round + 1, SurrogateDone = false, NextBatch = 0, Finished = converged || round + 1 >= rounds };
            state.Save(workDir);
        }
        foreach (var updater in updaters) updater.Dispose();
        return new ProtectionResult(noise, triggers, state.RoundLosses, mem.PgdTime, mem.TriggerTime, surrogateClock.Elapsed);
    }

    double ProtectBatch(List<int> batch, int round, MemRound mem, NoiseStore noise, OwnerPatterns? owners, TriggerTable? triggers)
    {
        using var scope = NewDisposeScope();
        var rng = new Random(Seeds.For(SeedStream.BatchCaptions, options.Seed, round, batch[0]));
        var chosen = batch.Select(i => rng.Next(items[i].Captions.Count)).ToArray();
        var captions = batch.Select((i, n) => items[i].Captions[chosen[n]]).ToList();
        var clean01 = PixelSpace.Unnormalize(pixels.Batch(batch.Select(i => items[i].Image).ToList(), device));
        var published = noise.Read(batch, device);
        var current = batch.Select((i, n) => triggers?.Get(i, chosen[n]) ?? []).ToList();

        using var users = owners?.ForBatch(batch, device, options.UserBound);
        var own = users?.Own(clean01, published, options.Epsilon - options.UserBound) ?? published;
        var (optimised, found, loss) = mem.Run(clean01, own, published, captions, current, searchTriggers: round < options.TriggerRounds,
            RoundSeeds.ForDatasetBatch(options.Seed, round, batch[0]), users);
        for (int n = 0; n < batch.Count && triggers is not null; n++) triggers.Set(batch[n], chosen[n], found[n]);
        noise.Write(batch, users?.Published(clean01, optimised) ?? optimised);
        if (users is not null) owners!.Keep(users);
        return loss;
    }

    // Progress counts an ensemble's steps together: member m's step s is step m × SurrogateSteps + s of the round.
    void SurrogateSteps(SurrogateUpdater updater, int member, NoiseStore noise, TriggerTable? triggers, int round, CancellationToken cancel)
    {
        var rng = new Random(Seeds.For(SeedStream.SurrogateBatches, options.Seed, round));
        int batch = Math.Min(options.BatchSize, items.Count), context = members[0].Config.Text.ContextLength;
        updater.Run(options.SurrogateSteps, _ =>
        {
            var picked = Enumerable.Range(0, items.Count).OrderBy(_ => rng.Next()).Take(batch).ToList();
            var chosen = picked.Select(i => rng.Next(items[i].Captions.Count)).ToArray();
            var captions = picked.Select((i, n) => items[i].Captions[chosen[n]]).ToList();
            var perturbed = PixelSpace.Unnormalize(pixels.Batch(picked.Select(i => items[i].Image).ToList(), device)).Plus(noise.Read(picked, device)).Clamped(0, 1);
            var texts = triggers is null
                ? TextTensors.Batch(captions, context, device)
                : TriggeredCaptions.Batch(picked.Select((i, n) => triggers.Get(i, chosen[n])).ToList(), captions, context, device);
            return (perturbed, texts);
        }, cancel, (step, loss) =>
        {
            if (step % 10 == 0 || step == options.SurrogateSteps - 1)
                OnProgress?.Invoke(new ProtectionProgress("surrogate", round + 1, options.Rounds, member * options.SurrogateSteps + step + 1, members.Count * options.SurrogateSteps, loss));
        });
    }
}
