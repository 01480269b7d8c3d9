using System.Security.Cryptography;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Options;
using Unlearnable.Contracts.V1;
using Unlearnable.Imaging;
using Unlearnable.Sidecar.Admission;
using Unlearnable.Sidecar.Batching;
using Unlearnable.Sidecar.Model;
using Unlearnable.Sidecar.Observability;
using Unlearnable.Sidecar.Profiles;

namespace Unlearnable.Sidecar.Posts;

/// <summary>
/// One post from request to response: validate, replay a stored result for a repeated post_id,
/// decode the image (a bounded number at a time), queue it for a micro-batch, then store the
/// result and count it on the user's profile. A post_id is protected once: a repeat that comes
/// while it runs joins it (<see cref="InFlightPosts"/>), one that comes after gets the stored
/// answer, and the store keeps the first answer only, so every replay is byte-identical to what
/// was published. A sticky user's first trigger is decided by one post at a time. Plain class;
/// the gRPC service is a thin shell.
/// </summary>
public sealed class PostProtector(IOptions<SidecarOptions> options, WarmSurrogate surrogate, MicroBatcher batcher, IProfileStore store,
    InFlightPosts inFlight, AdmissionControl admission, CodecGate codecs, PostMemory memory, SidecarMetrics metrics)
{
    /// <param name="tenant">Whose the post is (<see cref="Hosting.ApiKeyInterceptor.Tenant"/>): its user is that tenant's.</param>
    public async Task<ProtectResponse> ProtectAsync(string tenant, ProtectRequest request, CancellationToken cancel)
    {
        var settings = RequestValidation.Validate(request, options.Value);
        if (admission.Draining) throw new RpcException(new Status(StatusCode.Unavailable, new ServerDrainingException().Message));
        if (!surrogate.IsReady)
            throw new RpcException(new Status(StatusCode.Unavailable, surrogate.Failure is null
                ? "the surrogate model is still loading; retry when health reports SERVING"
                : $"the surrogate model failed to load: {surrogate.Failure}"));
        var hash = Hash(request);
        var user = new UserKey(tenant, request.UserId);
        if (store.FindResult(user, request.PostId) is { } stored) return Replay(stored.RequestHash, hash, stored.Response, request.PostId);

        ProtectResponse response;
        bool joined;
        byte[] runningHash;
        try
        {
            (response, joined, runningHash) = await inFlight.RunAsync(user, request.PostId, hash, options.Value.Limits.MaxPostsInFlightPerUser,
                work => FirstRunAsync(user, request, settings, hash, work), cancel);
        }
        catch (UserShareExceededException)
        {
            metrics.Rejected.WithLabels("user_share").Inc();
            throw;
        }
        return joined ? Replay(runningHash, hash, response, request.PostId) : response;
    }

    async Task<ProtectResponse> FirstRunAsync(UserKey user, ProtectRequest request, PostSettings settings, byte[] hash, CancellationToken cancel)
    {
        // A run of the same post may have finished between the lookup above and taking the in-flight slot.
        if (store.FindResult(user, request.PostId) is { } stored) return Replay(stored.RequestHash, hash, stored.Response, request.PostId);
        return await RunAsync(user, request, settings, hash, cancel);
    }

    async Task<ProtectResponse> RunAsync(UserKey user, ProtectRequest request, PostSettings settings, byte[] hash, CancellationToken cancel)
    {
        var profile = store.Touch(user, settings.Policy, options.Value.Protection.DefaultTriggerPolicy);
        return await ProtectImageAsync(user, request, settings, hash, profile, cancel);
    }

    async Task<ProtectResponse> ProtectImageAsync(UserKey user, ProtectRequest request, PostSettings settings, byte[] hash, StoredProfile profile, CancellationToken cancel)
    {
        int size = surrogate.Model.Config.Vision.ImageSize;
        PreparedImage image;
        var images = new PostImages(options.Value.Limits, size);
        var upload = request.Image.ToByteArray();
        try { image = await codecs.RunAsync("decode", images.Pixels(upload), () => images.Prepare(upload), cancel); }
        catch (ImageRejectedException e) { throw RequestValidation.Invalid("image", e.Message); }

        long pixels = (long)image.Upright.Width * image.Upright.Height;
        var decoded = memory.TryHold(user.Tenant, 4 * pixels);   // RGBA while it waits for its batch
        if (decoded is null)
        {
            image.Dispose();
            metrics.Rejected.WithLabels("memory").Inc();
            throw new QueueFullException(memory.Refusal(user.Tenant, "its decoded image", 4 * pixels));
        }
        IAsyncDisposable? deciding = null;
        using (decoded)
        using (image)
        try
        {
            // A post that may decide a sticky user's trigger holds the user (on every replica) from its batch until the trigger
            // is stored, not while it is decoded or finished; the next post then reads what it decided.
            if (profile.Policy == TriggerPolicy.Sticky && profile.StickyTrigger is null && settings.Key.TriggerLength > 0)
            {
                deciding = await store.LockUserAsync(user, cancel);
                profile = store.Get(user) ?? profile;
            }
            settings = settings with { Key = KeptLength(settings.Key, request, profile, options.Value.Protection) };
            int[]? sticky = profile.Policy == TriggerPolicy.Sticky && profile.StickyTrigger is { } t && t.Length == settings.Key.TriggerLength ? t : null;
            if (deciding is not null && profile.StickyTrigger is not null)
            {
                await deciding.DisposeAsync();   // decided by the post it waited for: nothing left to decide
                deciding = null;
            }
            var pending = new PendingPost(user, image.Pixels01, request.Caption, settings.Key, sticky, settings.Queue, cancel);
            batcher.Enqueue(pending);
            var done = await pending.Completion.Task;
            if (deciding is not null)
            {
                store.DecideStickyTrigger(user, done.TriggerIds, done.Trigger);
                await deciding.DisposeAsync();
                deciding = null;
            }
            var published = await codecs.RunAsync("finish", pixels, () => images.Finish(image, done.Noise, Output(settings, image.UploadFormat), done.Bound), cancel);
            var response = new ProtectResponse
            {
                PostId = request.PostId,
                Image = ByteString.CopyFrom(published.Bytes),
                ImageFormat = published.Format switch
                {
                    OutputFormat.Jpeg => ImageFormat.Jpeg,
                    OutputFormat.WebpLossless => ImageFormat.WebpLossless,
                    _ => ImageFormat.Png,
                },
                ProtectedCaption = done.Trigger.Length == 0 ? request.Caption : (done.Trigger + " " + request.Caption).TrimEnd(),
                Trigger = done.Trigger,
                Quality = new Quality
                {
                    Linf = published.LInfinity, PsnrDb = published.Psnr, SurrogateLoss = done.Loss, PgdSteps = done.PgdSteps,
                    QueuedMs = done.Queued.TotalMilliseconds, OptimiseMs = done.Optimised.TotalMilliseconds, BatchSize = done.BatchSize,
                    JpegQuality = published.JpegQuality, Strength = RequestValidation.Contract(settings.Key.Strength),
                },
            };
            cancel.ThrowIfCancellationRequested();   // e.g. the user's profile was deleted meanwhile: nothing is stored
            var saved = store.SaveResult(user, request.PostId, hash, response)
                ?? throw new OperationCanceledException("the user's profile was deleted while the post was protected", cancel);
            // Another replica may have answered the same post first: its answer is the one published, and counted.
            if (saved.StoredNow) store.RecordPost(user, done.TriggerIds, done.Trigger);
            return Replay(saved.First.RequestHash, hash, saved.First.Response, request.PostId, replayed: false);
        }
        finally
        {
            if (deciding is not null) await deciding.DisposeAsync();
        }
    }

    /// <summary>A sticky user's post that names no trigger length gets their trigger at the length it was decided at, so a
    /// server whose default length changed since keeps giving it (within the server's current maximum); a post that names
    /// a length gets that length.</summary>
    static BatchKey KeptLength(BatchKey key, ProtectRequest request, StoredProfile profile, ProtectionDefaults defaults) =>
        request.Options is not { TriggerLength: not 0 } && key.TriggerLength > 0 && profile.Policy == TriggerPolicy.Sticky
            && profile.StickyTrigger is { Length: var stored } && defaults.IsTriggerLength(stored)
            ? key with { TriggerLength = stored } : key;

    // Unspecified keeps the upload's format, unless a JPEG quality was asked for.
    static OutputEncoding Output(PostSettings settings, OutputFormat upload) => new(settings.Format switch
    {
        ImageFormat.Jpeg => OutputFormat.Jpeg,
        ImageFormat.Png => OutputFormat.Png,
        ImageFormat.WebpLossless => OutputFormat.WebpLossless,
        _ => settings.JpegQuality is null ? upload : OutputFormat.Jpeg,
    }, settings.JpegQuality);

    static ProtectResponse Replay(byte[] storedHash, byte[] hash, ProtectResponse stored, string postId, bool replayed = true)
    {
        if (!storedHash.AsSpan().SequenceEqual(hash))
            throw new RpcException(new Status(StatusCode.AlreadyExists,
                $"post_id '{postId}' was already protected for this user with a different image, caption or options; use a new post_id"));
        var replay = stored.Clone();
        replay.Replayed = replayed;
        return replay;
    }

    // Hashes the content in place (length-prefixed parts) rather than re-serialising a copy of the image.
    static byte[] Hash(ProtectRequest request)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void Part(ReadOnlySpan<byte> bytes)
        {
            Span<byte> length = stackalloc byte[8];
            System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(length, bytes.Length);
            hash.AppendData(length);
            hash.AppendData(bytes);
        }
        Part(request.Image.Span);
        Part(System.Text.Encoding.UTF8.GetBytes(request.Caption));
        Part((request.Options ?? new ProtectOptions()).ToByteArray());
        return hash.GetHashAndReset();
    }
}
