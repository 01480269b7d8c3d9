using Unlearnable.Clip.Checkpoints;
using Unlearnable.Protection;
using Unlearnable.Protection.NaturalTriggers;
using Unlearnable.Tests.Shared;
using static TorchSharp.torch;

namespace Unlearnable.Protection.Tests;

/// <summary>The masked LM behind natural triggers, on a small random BERT written by the test (<see cref="TinyBert"/>).</summary>
public class MaskedLmTests
{
    static readonly string[] Pieces = TinyBert.Pieces;

    static string WriteTinyBert(bool legacyLayerNormNames = false, string? drop = null) => TinyBert.Write(legacyLayerNormNames, drop);

    static int Clip(string word) => TriggerVocabulary.SingleToken(word)!.Value;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ProposesTheTopWholeWordsPerMaskAsSingleClipTokens(bool legacyNames)
    {
        using var proposer = MaskedLmProposer.Load(WriteTinyBert(legacyNames), CPU, wordsPerMask: 2);
        Assert.Equal("mlm:tiny-bert", proposer.Name);
        var proposals = proposer.Propose(["a red circle", "two blue squares of stone", "a red circle"], 3);
        Assert.Equal(3, proposals.Count);
        foreach (var caption in proposals)
        {
            Assert.Equal(3, caption.Length);
            foreach (var position in caption) Assert.Equal([Clip("bright"), Clip("quiet")], position);
        }
    }

    [Fact]
    public void PaddingDoesNotChangeAShortCaptionsPredictions()
    {
        var folder = WriteTinyBert();
        using var model = BertMaskedLm.Load(folder, CPU);
        // [CLS] [MASK] [MASK] red circle [SEP] alone, and padded next to a longer row.
        long[] shortRow = [2, 4, 4, 7, 10, 3], longRow = [2, 4, 4, 13, 8, 11, 14, 24, 3];
        var alone = model.Logits(tensor(shortRow, [1, 6]), ones(1, 6, dtype: @bool));
        var ids = tensor(shortRow.Concat([0L, 0, 0]).Concat(longRow).ToArray(), [2, 9]);
        var attends = tensor(Enumerable.Range(0, 18).Select(i => i >= 9 || i < 6).ToArray(), [2, 9]);
        var batched = model.Logits(ids, attends)[0].narrow(0, 0, 6);
        Assert.True(alone[0].allclose(batched, rtol: 1e-4, atol: 1e-4));
        Assert.Equal(Pieces.Length, alone.shape[2]);
    }

    [Fact]
    public void ACheckpointMissingAnEncoderWeightIsRefusedByName()
    {
        var folder = WriteTinyBert(drop: "bert.encoder.layer.1.output.dense.weight");
        var e = Assert.Throws<InvalidDataException>(() => MaskedLmProposer.Load(folder, CPU));
        Assert.Contains("bert.encoder.layer.1.output.dense.weight", e.Message);
        Assert.Contains("masked-LM", e.Message);

        var noHead = WriteTinyBert(drop: "cls.predictions.bias");
        Assert.Contains("cls.predictions.bias", Assert.Throws<InvalidDataException>(() => MaskedLmProposer.Load(noHead, CPU)).Message);

        var shortVocab = WriteTinyBert();
        File.WriteAllLines(Path.Combine(shortVocab, "vocab.txt"), Pieces.Take(10));
        Assert.Contains("vocab_size", Assert.Throws<InvalidDataException>(() => MaskedLmProposer.Load(shortVocab, CPU)).Message);
        Assert.Throws<DirectoryNotFoundException>(() => MaskedLmProposer.Load("/nonexistent/bert", CPU));
    }
}
