using Microsoft.Extensions.Options;
using Unlearnable.Protection;
using Unlearnable.Protection.NaturalTriggers;
using static TorchSharp.torch;

namespace Unlearnable.Sidecar.Model;

/// <summary>
/// The trigger vocabularies posts may name: the built-in ones, and "mlm" (the paper's natural
/// triggers: HotFlip among a masked LM's top words for each caption) when
/// Sidecar:Protection:MaskedLm names a BERT folder. The masked LM is loaded with the surrogate,
/// onto its device, before the server reports SERVING.
/// </summary>
public sealed class TriggerVocabularies(IOptions<SidecarOptions> options, ILogger<TriggerVocabularies> log) : IDisposable
{
    // Proposals are cached per caption; a server sees endless new captions, so the cache is bounded.
    const int CachedCaptions = 4096;
    MaskedLmProposer? _proposer;
    TriggerVocabulary? _maskedLm;

    public void Load(Device device)
    {
        var folder = options.Value.Protection.MaskedLm;
        if (string.IsNullOrWhiteSpace(folder)) return;
        _proposer = MaskedLmProposer.Load(folder, device);
        _proposer.MaxCachedCaptions = CachedCaptions;
        _maskedLm = TriggerVocabulary.FromMaskedLm(_proposer);
        log.LogInformation("Masked LM {Name} loaded: the \"{Vocabulary}\" trigger vocabulary is offered", _proposer.Name, ProtectionDefaults.MaskedLmVocabulary);
    }

    /// <summary>A vocabulary that request validation has accepted.</summary>
    public TriggerVocabulary Get(string name) => name == ProtectionDefaults.MaskedLmVocabulary
        ? _maskedLm ?? throw new InvalidOperationException("the masked LM is not loaded")
        : TriggerVocabulary.BuiltIn(name) ?? throw new ArgumentException($"unknown trigger vocabulary '{name}'", nameof(name));

    public void Dispose() => _proposer?.Dispose();
}
