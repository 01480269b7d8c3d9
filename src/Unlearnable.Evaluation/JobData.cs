using Unlearnable.Data;
using Unlearnable.Data.Formats;
using Unlearnable.Data.Synthetic;
using Unlearnable.Data.Synthetic.Faces;

namespace Unlearnable.Evaluation;

/// <summary>The job's clean training and test splits (faces: invented names, last photo of each person held out).</summary>
public sealed record JobData(string Description, IReadOnlyList<CaptionedImage> Train, IReadOnlyList<CaptionedImage> Test)
{
    public static JobData Load(DataSpec spec, int seed, int imageSize, string workDir)
    {
        CaptionDataset set = spec.Kind switch
        {
            DataKind.SyntheticIdentities => FaceCaptions.Build(
                SyntheticIdentities.Write(Path.Combine(workDir, "identities"), spec.Identities, spec.Photos, seed, imageSize), seed),
            DataKind.Identities => FaceCaptions.Build(IdentityFolders.Load(spec.Path!), seed),
            DataKind.Captions => DatasetLoader.Load(spec.Path!),
            DataKind.SyntheticScenes => SyntheticScenes.Generate(spec.Images, seed, spec.TestImages, imageSize),
            _ => throw new SpecException("data.kind", $"unknown kind '{SpecNames.Of(spec.Kind)}'"),
        };
        var (train, test) = (set.Of(Split.Train), set.Of(Split.Test));
        return new JobData($"{SpecNames.Of(spec.Kind)}: {train.Count} training and {test.Count} test images", train, test);
    }
}
