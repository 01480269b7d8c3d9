using System.Text;
using Grpc.Core;
using Unlearnable.Contracts;
using Unlearnable.Hosting;
using Unlearnable.Contracts.V1;
using Unlearnable.Protection;
using Unlearnable.Sidecar.Batching;

namespace Unlearnable.Sidecar.Posts;

/// <summary>The checked settings of one post. Format Unspecified = the upload's; a null JPEG quality keeps the upload's.</summary>
public sealed record PostSettings(BatchKey Key, ImageFormat Format, int? JpegQuality, TriggerPolicy Policy, QueuePolicy Queue);

/// <summary>
/// Checks everything about a request except the image pixels, before any work: ids, caption
/// (size, valid UTF-8), options within the server's ranges, no fields this server does not know.
/// Every refusal is INVALID_ARGUMENT with a message that names the field and the limit.
/// </summary>
public static class RequestValidation
{
    public static PostSettings Validate(ProtectRequest request, SidecarOptions options)
    {
        var limits = options.Limits;
        var defaults = options.Protection;
        Id("user_id", request.UserId, limits.MaxIdLength);
        Id("post_id", request.PostId, limits.MaxIdLength);
        if (request.Image.IsEmpty) throw Invalid("image", "image is empty (0 bytes); send JPEG, PNG or WebP bytes");
        if (request.Image.Length > limits.MaxImageBytes)
            throw Invalid("image", $"image is {request.Image.Length:N0} bytes; the limit is {limits.MaxImageBytes:N0}");
        int captionBytes = Encoding.UTF8.GetByteCount(request.Caption);
        if (captionBytes > limits.MaxCaptionBytes) throw Invalid("caption", $"caption is {captionBytes:N0} bytes of UTF-8; the limit is {limits.MaxCaptionBytes:N0}");
        // Protobuf decodes invalid UTF-8 to U+FFFD: a caption holding it was not valid UTF-8.
        if (request.Caption.Contains('\uFFFD')) throw Invalid("caption", "caption is not valid UTF-8");
        if (request.Caption.Any(c => char.IsControl(c) && c is not ('\n' or '\t')))
            throw Invalid("caption", "caption contains control characters");

        var o = request.Options ?? new ProtectOptions();
        if (UnknownFields.In(request) || UnknownFields.In(o))
            throw Invalid("request", "request has fields this server does not know (it speaks unlearnable.v1 as described by GetServerInfo); upgrade the server or drop them");
        if (!Enum.IsDefined(o.Strength))
            throw Invalid("options.strength", $"options.strength {(int)o.Strength} is unknown; use PROTECTION_STRENGTH_LOW, _MEDIUM or _HIGH (0 = the server default, {defaults.DefaultStrength})");
        var strength = Strength(o.Strength) ?? defaults.DefaultStrength;
        var level = defaults.Of(strength);
        double epsilon = o.Epsilon == 0 ? level.Epsilon : o.Epsilon;
        if (!double.IsFinite(epsilon) || epsilon < defaults.MinEpsilon || epsilon > defaults.MaxEpsilon)
            throw Invalid("options.epsilon", $"options.epsilon {o.Epsilon} is outside the allowed range [{defaults.MinEpsilon}, {defaults.MaxEpsilon}] (1/255 units; 0 = the {strength} level's {level.Epsilon})");
        int length = o.TriggerLength switch
        {
            0 => defaults.DefaultTriggerLength,
            -1 => 0,
            var k when defaults.IsTriggerLength(k) => k,
            var k => throw Invalid("options.trigger_length", $"options.trigger_length {k} is outside 1..{defaults.MaxTriggerLength} (0 = default {defaults.DefaultTriggerLength}, -1 = no trigger)"),
        };
        string vocabulary = o.Vocabulary.Length == 0 ? defaults.DefaultVocabulary : o.Vocabulary;
        var offered = defaults.Vocabularies();
        if (vocabulary == ProtectionDefaults.MaskedLmVocabulary && !offered.Contains(vocabulary))
            throw Invalid("options.vocabulary", "options.vocabulary 'mlm' needs a masked language model and this server has none " +
                $"(Sidecar:Protection:MaskedLm names a bert-base-uncased folder); use {string.Join(" or ", offered)}");
        if (!offered.Contains(vocabulary))
            throw Invalid("options.vocabulary", $"options.vocabulary '{o.Vocabulary}' is unknown; use {string.Join(" or ", offered)}");
        if (!Enum.IsDefined(o.OutputFormat))
            throw Invalid("options.output_format", $"options.output_format {(int)o.OutputFormat} is unknown; use IMAGE_FORMAT_JPEG, IMAGE_FORMAT_PNG or IMAGE_FORMAT_WEBP_LOSSLESS (0 = the upload's format)");
        if (o.JpegQuality is < 0 or > 100) throw Invalid("options.jpeg_quality", $"options.jpeg_quality {o.JpegQuality} is outside 1..100 (0 = keep the upload's)");
        if (o.JpegQuality != 0 && o.OutputFormat is ImageFormat.Png or ImageFormat.WebpLossless)
            throw Invalid("options.jpeg_quality", $"options.jpeg_quality applies to JPEG answers; this post asks for {o.OutputFormat}");
        if (!Enum.IsDefined(o.TriggerPolicy)) throw Invalid("options.trigger_policy", $"options.trigger_policy {(int)o.TriggerPolicy} is unknown; use TRIGGER_POLICY_PER_POST or TRIGGER_POLICY_STICKY");
        var queue = Queue(o, options.Batching);
        // Published noise moves pixels in whole 1/255 steps, so only whole bounds differ: 7.3 protects as 7. Keying
        // batches by the whole bound also keeps the number of distinct batch settings small whatever clients send.
        return new PostSettings(new BatchKey(Math.Floor(epsilon + 1e-9), length, vocabulary, strength), o.OutputFormat, o.JpegQuality == 0 ? null : o.JpegQuality, o.TriggerPolicy, queue);
    }

    /// <summary>Longest queue timeout a post may ask for: beyond it the post might as well have none.</summary>
    public const uint MaxQueueTimeoutMs = 86_400_000;

    static QueuePolicy Queue(ProtectOptions o, BatchingOptions batching)
    {
        var priority = o.Priority switch
        {
            Priority.Unspecified or Priority.Interactive => PostPriority.Interactive,
            Priority.Bulk => PostPriority.Bulk,
            var p => throw Invalid("options.priority", $"options.priority {(int)p} is unknown; use PRIORITY_INTERACTIVE or PRIORITY_BULK (0 = interactive)"),
        };
        var action = o.TimeoutAction switch
        {
            TimeoutAction.Unspecified => batching.DefaultTimeoutAction,
            TimeoutAction.Reject => QueueTimeoutAction.Reject,
            TimeoutAction.Delay => QueueTimeoutAction.Delay,
            var a => throw Invalid("options.timeout_action", $"options.timeout_action {(int)a} is unknown; use TIMEOUT_ACTION_REJECT or TIMEOUT_ACTION_DELAY (0 = the server's, {batching.DefaultTimeoutAction})"),
        };
        if (o.QueueTimeoutMs > MaxQueueTimeoutMs)
            throw Invalid("options.queue_timeout_ms", $"options.queue_timeout_ms {o.QueueTimeoutMs} is above {MaxQueueTimeoutMs:N0} (24 hours); 0 = the server's default ({batching.DefaultQueueTimeout.TotalMilliseconds:F0} ms, 0 = none)");
        long timeout = o.QueueTimeoutMs == 0 ? (long)batching.DefaultQueueTimeout.TotalMilliseconds : o.QueueTimeoutMs;
        return new QueuePolicy(priority, timeout == 0 ? null : TimeSpan.FromMilliseconds(timeout), action);
    }

    public static Protection.ProtectionStrength? Strength(Contracts.V1.ProtectionStrength strength) => strength switch
    {
        Contracts.V1.ProtectionStrength.Low => Protection.ProtectionStrength.Low,
        Contracts.V1.ProtectionStrength.Medium => Protection.ProtectionStrength.Medium,
        Contracts.V1.ProtectionStrength.High => Protection.ProtectionStrength.High,
        _ => null,
    };

    public static Contracts.V1.ProtectionStrength Contract(Protection.ProtectionStrength strength) => strength switch
    {
        Protection.ProtectionStrength.Low => Contracts.V1.ProtectionStrength.Low,
        Protection.ProtectionStrength.High => Contracts.V1.ProtectionStrength.High,
        _ => Contracts.V1.ProtectionStrength.Medium,
    };

    public static void Id(string field, string value, int maxLength)
    {
        if (string.IsNullOrWhiteSpace(value)) throw Invalid(field, $"{field} is required");
        if (value.Length > maxLength) throw Invalid(field, $"{field} is {value.Length} characters; the limit is {maxLength}");
        if (value.Any(char.IsControl) || value.Contains('\uFFFD')) throw Invalid(field, $"{field} contains control characters or invalid UTF-8");
    }

    /// <summary>INVALID_ARGUMENT with the message, plus a google.rpc.BadRequest detail naming the field (for clients that read rich errors).</summary>
    public static RpcException Invalid(string field, string message) => GrpcErrors.InvalidArgument(message, [(field, message)]);
}
