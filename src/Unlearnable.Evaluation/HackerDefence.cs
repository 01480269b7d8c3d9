using System.Globalization;
using Unlearnable.Imaging;

namespace Unlearnable.Evaluation;

/// <summary>
/// What a hacker does to a crawled training set before (or while) fine-tuning on it, in the hope of washing out
/// protection, written as in specs: steps joined by "+", e.g. "jpeg:75+augment". A step is an image wash
/// (<see cref="Countermeasure"/>: jpeg:Q, rescale:F, grayscale, blur:SIGMA, platform), "augment" (UEraser-style
/// augmentation drawn afresh every epoch), "captions" (each caption cut down to what names the person) or "filter:F"
/// (the pre-trained model's image–text cosine per pair, the lowest share F dropped, as LAION filtered its crawl).
/// </summary>
public sealed record HackerDefence(IReadOnlyList<Countermeasure> Washes, bool Augment, bool CleanCaptions, double? FilterShare)
{
    public const string AugmentStep = "augment", CaptionsStep = "captions", FilterStep = "filter";
    /// <summary>LAION kept pairs above a cosine of 0.28–0.3, about a tenth to a half of the crawl dropped; a share past this keeps too little to learn from.</summary>
    public const double MaxFilterShare = 0.9;

    public static HackerDefence Parse(string text)
    {
        var steps = text.Split('+', StringSplitOptions.TrimEntries);
        if (steps.Any(s => s.Length == 0)) throw new ArgumentException($"'{text}': an empty step; join steps with '+', e.g. jpeg:75+augment");
        var washes = new List<Countermeasure>();
        bool augment = false, captions = false;
        double? filter = null;
        foreach (var step in steps)
        {
            var (name, amount) = step.ToLowerInvariant().Split(':', 2) is var parts && parts.Length == 2 ? (parts[0], parts[1]) : (step.ToLowerInvariant(), null);
            switch (name)
            {
                case AugmentStep when amount is null:
                    augment = !augment ? true : throw Twice(text, step);
                    break;
                case CaptionsStep when amount is null:
                    captions = !captions ? true : throw Twice(text, step);
                    break;
                case FilterStep:
                    if (filter is not null) throw Twice(text, step);
                    if (!double.TryParse(amount, NumberStyles.Float, CultureInfo.InvariantCulture, out var share) || !(share > 0 && share <= MaxFilterShare))
                        throw new ArgumentException($"'{step}': the share of pairs the filter drops must be a number in (0, {MaxFilterShare.ToString(CultureInfo.InvariantCulture)}]");
                    filter = share;
                    break;
                default:
                    try { washes.Add(Countermeasure.Parse(step)); }
                    catch (ArgumentException e) when (e.Message.StartsWith("unknown", StringComparison.Ordinal))
                    {
                        throw new ArgumentException($"unknown step '{step}' in '{text}'; use jpeg:Q, rescale:F, grayscale, blur:SIGMA, platform, augment, captions or filter:F, joined by '+'");
                    }
                    break;
            }
        }
        return new HackerDefence(washes, augment, captions, filter);
    }

    static ArgumentException Twice(string text, string step) => new($"'{text}' names '{step.Split(':')[0]}' twice");

    /// <summary>Whether the hacker needs the pre-trained model to apply this (the filter scores pairs with it).</summary>
    public bool NeedsPreTrainedModel => FilterShare is not null;

    public override string ToString() => string.Join("+", Washes.Select(w => w.ToString())
        .Concat(FilterShare is { } f ? [$"{FilterStep}:{f.ToString(CultureInfo.InvariantCulture)}"] : [])
        .Concat(CleanCaptions ? [CaptionsStep] : []).Concat(Augment ? [AugmentStep] : []));
}
