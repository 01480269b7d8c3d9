using System.Collections.Concurrent;
using System.Security.Cryptography;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Options;
using Unlearnable.Contracts.V1;
using Unlearnable.Imaging;
using Unlearnable.Sidecar.Batching;
using Unlearnable.Sidecar.Model;
using Unlearnable.Sidecar.Profiles;

namespace Unlearnable.Sidecar.Posts;

/// <summary>
/// One post from request to response: validate, replay a stored result for a repeated post_id,
/// decode the image (a bounded number at a time), queue it for a micro-batch, then store the
/// result and count it on the user's profile. Plain class; the gRPC service is a thin shell.
/// </summary>
public sealed class PostProtector(IOptions<SidecarOptions> options, WarmSurrogate surrogate, MicroBatcher batcher, ProfileStore store)
{
    readonly ConcurrentDictionary<(string User, string Post), (byte[] Hash, Task<ProtectResponse> Work)> _inFlight = new();
    readonly SemaphoreSlim _decoders = new(Math.Max(1, Environment.ProcessorCount));
    long _heldPixels;

    public async Task<ProtectResponse> ProtectAsync(ProtectRequest request, CancellationToken cancel)
    {
        var settings = RequestValidation.Validate(request, options.Value);
        if (!surrogate.IsReady)
            throw new RpcException(new Status(StatusCode.Unavailable, surrogate.Failure is null
                ? "the surrogate model is still loading; retry when health reports SERVING"
                : $"the surrogate model failed to load: {surrogate.Failure}"));
        var hash = Hash(request);
        if (store.FindResult(request.UserId, request.PostId) is { } stored) return Replay(stored.RequestHash, hash, stored.Response, request.PostId);

        var key = (request.UserId, request.PostId);
        var mine = (hash, Work: new TaskCompletionSource<ProtectResponse>(TaskCreationOptions.RunContinuationsAsynchronously));
        var entry = _inFlight.GetOrAdd(key, (mine.hash, mine.Work.Task));
        if (!ReferenceEquals(entry.Work, mine.Work.Task))   // the same post is being protected right now
            return Replay(entry.Hash, hash, await entry.Work.WaitAsync(cancel), request.PostId);
        try
        {
            var response = await RunAsync(request, settings, hash, cancel);
            mine.Work.TrySetResult(response);
            return response;
        }
        catch (Exception e)
        {
            mine.Work.TrySetException(e);
            throw;
        }
        finally
        {
            _inFlight.TryRemove(key, out _);
        }
    }

    async Task<ProtectResponse> RunAsync(ProtectRequest request, PostSettings settings, byte[] hash, CancellationToken cancel)
    {
        var profile = store.Touch(request.UserId, settings.Policy, options.Value.Protection.DefaultTriggerPolicy);
        int[]? sticky = profile.Policy == TriggerPolicy.Sticky && profile.StickyTrigger is { } t && t.Length == settings.Key.TriggerLength ? t : null;
        int size = surrogate.Model.Config.Vision.ImageSize;
        PreparedImage image;
        await _decoders.WaitAsync(cancel);
        try { image = new PostImages(options.Value.Limits, size).Prepare(request.Image.ToByteArray()); }
        catch (ImageRejectedException e) { throw RequestValidation.Invalid("image", e.Message); }
        finally { _decoders.Release(); }

        long pixels = (long)image.Upright.Width * image.Upright.Height;
        long budget = options.Value.Batching.MaxQueuedPixels;
        long held = Interlocked.Add(ref _heldPixels, pixels);
        if (held > budget && held > pixels)   // one image alone may exceed the budget; a full queue may not
        {
            Interlocked.Add(ref _heldPixels, -pixels);
            image.Dispose();
            throw new QueueFullException($"queued images already hold the {budget:N0}-pixel budget; retry later");
        }
        using (image)
        try
        {
            var pending = new PendingPost(request.UserId, image, request.Caption, settings.Key, Output(settings, image.UploadFormat), sticky, cancel);
            batcher.Enqueue(pending);
            var done = await pending.Completion.Task;
            var response = new ProtectResponse
            {
                PostId = request.PostId,
                Image = ByteString.CopyFrom(done.Image.Bytes),
                ImageFormat = done.Image.Format switch
                {
                    OutputFormat.Jpeg => ImageFormat.Jpeg,
                    OutputFormat.WebpLossless => ImageFormat.WebpLossless,
                    _ => ImageFormat.Png,
                },
                ProtectedCaption = done.Trigger.Length == 0 ? request.Caption : (done.Trigger + " " + request.Caption).TrimEnd(),
                Trigger = done.Trigger,
                Quality = new Quality
                {
                    Linf = done.Image.LInfinity, PsnrDb = done.Image.Psnr, SurrogateLoss = done.Loss, PgdSteps = done.PgdSteps,
                    QueuedMs = done.Queued.TotalMilliseconds, OptimiseMs = done.Optimised.TotalMilliseconds, BatchSize = done.BatchSize,
                    JpegQuality = done.Image.JpegQuality, Strength = RequestValidation.Contract(settings.Key.Strength),
                },
            };
            store.SaveResult(request.UserId, request.PostId, hash, response);
            store.RecordPost(request.UserId, done.TriggerIds, done.Trigger);
            return response;
        }
        finally
        {
            Interlocked.Add(ref _heldPixels, -pixels);
        }
    }

    // Unspecified keeps the upload's format, unless a JPEG quality was asked for.
    static OutputEncoding Output(PostSettings settings, OutputFormat upload) => new(settings.Format switch
    {
        ImageFormat.Jpeg => OutputFormat.Jpeg,
        ImageFormat.Png => OutputFormat.Png,
        ImageFormat.WebpLossless => OutputFormat.WebpLossless,
        _ => settings.JpegQuality is null ? upload : OutputFormat.Jpeg,
    }, settings.JpegQuality);

    static ProtectResponse Replay(byte[] storedHash, byte[] hash, ProtectResponse stored, string postId)
    {
        if (!storedHash.AsSpan().SequenceEqual(hash))
            throw new RpcException(new Status(StatusCode.AlreadyExists,
                $"post_id '{postId}' was already protected for this user with a different image, caption or options; use a new post_id"));
        var replay = stored.Clone();
        replay.Replayed = true;
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
