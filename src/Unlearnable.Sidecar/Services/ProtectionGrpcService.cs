using Grpc.Core;
using Microsoft.Extensions.Options;
using Unlearnable.Contracts.V1;
using Unlearnable.Hosting;
using Unlearnable.Sidecar.Admission;
using Unlearnable.Sidecar.Batching;
using Unlearnable.Sidecar.Model;
using Unlearnable.Sidecar.Observability;
using Unlearnable.Sidecar.Posts;
using Unlearnable.Sidecar.Profiles;

namespace Unlearnable.Sidecar.Services;

/// <summary>
/// The gRPC surface: thin methods over <see cref="PostProtector"/> and <see cref="IProfileStore"/>.
/// Every call is its tenant's (the key's, found by <see cref="ApiKeyInterceptor"/>): users are looked up, protected and
/// deleted within it. Authentication, status mapping and counting are interceptors' work (<see cref="ApiKeyInterceptor"/>,
/// <see cref="CallStatusInterceptor"/>); a stream maps and counts each of its posts itself, with the same mapping.
/// </summary>
[BindServiceMethod(typeof(ProtectionGrpcService), nameof(Bind))]
public sealed class ProtectionGrpcService(PostProtector protector, IProfileStore store, WarmSurrogate surrogate, IOptions<SidecarOptions> options,
    AdmissionControl admission, PostMemory memory, InFlightPosts inFlight, SidecarMetrics metrics, ILogger<ProtectionGrpcService> log) : ProtectionService.ProtectionServiceBase
{
    /// <summary>Found by grpc-dotnet through the attribute above: the generated binding, with strict request parsing.</summary>
    public static void Bind(ServiceBinderBase binder, ProtectionService.ProtectionServiceBase service) =>
        ProtectionService.BindService(new StrictParsingBinder(binder), service);

    public override async Task<ProtectResponse> Protect(ProtectRequest request, ServerCallContext context)
    {
        var tenant = ApiKeyInterceptor.Tenant(context);
        var response = await protector.ProtectAsync(tenant, request, context.CancellationToken);
        context.GetHttpContext().Response.RegisterForDispose(memory.Count(tenant, response.CalculateSize()));   // counted until written
        return response;
    }

    /// <summary>
    /// Posts on one stream are protected concurrently (they may share a batch) and answered as
    /// they finish. Every post gets an answer: its result, or a response carrying its error (bad
    /// input, a full server, a failure) while the stream goes on. The stream reads its next post
    /// only when it has a slot (at most MaxPostsInFlightPerStream of its own, and one of the
    /// server's, within its tenant's share of the streams' slots), so a client that sends faster
    /// than the server protects is held back by HTTP/2 flow control instead of filling memory, and
    /// at most that many messages are being read at once. A message read is counted in
    /// <see cref="PostMemory"/>, or answered RESOURCE_EXHAUSTED where it does not fit. Only the
    /// call's own end (cancelled, deadline) ends it early.
    /// </summary>
    public override async Task ProtectStream(IAsyncStreamReader<ProtectRequest> requests, IServerStreamWriter<ProtectResponse> responses, ServerCallContext context)
    {
        var cancel = context.CancellationToken;
        var tenant = ApiKeyInterceptor.Tenant(context);
        using var ownSlots = new SemaphoreSlim(options.Value.Limits.MaxPostsInFlightPerStream);
        using var writeLock = new SemaphoreSlim(1, 1);
        var running = new List<Task>();
        async Task Write(ProtectResponse response)
        {
            await writeLock.WaitAsync(cancel);
            try { await responses.WriteAsync(response, cancel); }
            finally { writeLock.Release(); }
        }
        async Task One(ProtectRequest request, AdmissionControl.Slot? slot)
        {
            long read = 2L * request.CalculateSize();   // read already: the message and its image's copy
            var message = slot is null ? null : memory.TryHold(tenant, read);
            PostMemory.Hold? answer = null;
            ProtectResponse response;
            try
            {
                if (slot is null) throw new ServerDrainingException();
                if (message is null) throw new QueueFullException(memory.Refusal(tenant, "this post", read));
                response = await protector.ProtectAsync(tenant, request, cancel);
                metrics.Posts.WithLabels("OK").Inc();
            }
            catch (Exception e) when (!cancel.IsCancellationRequested)
            {
                var rpc = StatusMapping.ToRpc(e, context, log);
                metrics.Posts.WithLabels(rpc.StatusCode.ToString()).Inc();
                response = Refused(request, rpc);
            }
            catch
            {
                Release();
                throw;
            }
            // The slot is kept until the answer is written: a client that does not read holds its own slots (and at most
            // MaxPostsInFlightPerStream answers in memory), and the stream reads no more of its posts meanwhile.
            answer = memory.Count(tenant, response.CalculateSize());
            try { await Write(response); }
            finally { Release(); }

            void Release()
            {
                message?.Dispose();
                answer?.Dispose();
                slot?.Dispose();
                ownSlots.Release();
            }
        }
        try
        {
            while (true)
            {
                await ownSlots.WaitAsync(cancel);
                AdmissionControl.Slot? slot = null;
                bool next = false;
                try
                {
                    try { slot = await admission.EnterAsync(tenant, cancel); }
                    catch (ServerDrainingException) { }   // posts still arrive and are answered UNAVAILABLE, one by one
                    next = await requests.MoveNext(cancel);
                }
                finally
                {
                    // The stream ended, or was cancelled, reset or sent a bad message while waiting: the slot goes back.
                    if (!next)
                    {
                        slot?.Dispose();
                        ownSlots.Release();
                    }
                }
                if (!next) break;
                running.Add(One(requests.Current, slot));
            }
        }
        finally
        {
            // Posts already read finish (or stop with the call) before the stream's semaphores are let go.
            try { await Task.WhenAll(running); }
            catch when (cancel.IsCancellationRequested) { }
        }
    }

    static ProtectResponse Refused(ProtectRequest request, RpcException e) =>
        new() { PostId = request.PostId, Error = new PostError { Code = (int)e.StatusCode, Message = e.Status.Detail } };

    public override Task<UserProfile> GetUserProfile(GetUserProfileRequest request, ServerCallContext context)
    {
        RequestValidation.Id("user_id", request.UserId, options.Value.Limits.MaxIdLength);
        var profile = store.Get(new UserKey(ApiKeyInterceptor.Tenant(context), request.UserId)) ?? throw new RpcException(new Status(StatusCode.NotFound, $"no profile for user_id '{request.UserId}'"));
        return Task.FromResult(new UserProfile
        {
            UserId = profile.UserId, TriggerPolicy = profile.Policy, StickyTrigger = profile.StickyTriggerText ?? "",
            PostsProtected = profile.Posts, CreatedUnixMs = profile.CreatedMs, LastSeenUnixMs = profile.LastSeenMs,
        });
    }

    public override Task<DeleteUserProfileResponse> DeleteUserProfile(DeleteUserProfileRequest request, ServerCallContext context)
    {
        RequestValidation.Id("user_id", request.UserId, options.Value.Limits.MaxIdLength);
        var user = new UserKey(ApiKeyInterceptor.Tenant(context), request.UserId);
        int stopped = inFlight.CancelUser(user);   // their posts in flight stop and store nothing afterwards
        var (deleted, results) = store.Delete(user);
        log.LogInformation("Deleted profile of a user ({Results} stored results, {Stopped} posts in flight stopped)", results, stopped);
        return Task.FromResult(new DeleteUserProfileResponse { Deleted = deleted, StoredResultsDeleted = results });
    }

    public override Task<ServerInfo> GetServerInfo(GetServerInfoRequest request, ServerCallContext context)
    {
        var o = options.Value;
        return Task.FromResult(new ServerInfo
        {
            Version = typeof(ProtectionGrpcService).Assembly.GetName().Version?.ToString() ?? "0",
            Model = surrogate.Description, Device = surrogate.Device.ToString(),
            MinEpsilon = o.Protection.MinEpsilon, MaxEpsilon = o.Protection.MaxEpsilon, DefaultEpsilon = o.Protection.Of(o.Protection.DefaultStrength).Epsilon,
            DefaultTriggerLength = o.Protection.DefaultTriggerLength, MaxTriggerLength = o.Protection.MaxTriggerLength,
            MaxBatchSize = o.Batching.MaxBatchSize, MaxImageBytes = o.Limits.MaxImageBytes, MaxImagePixels = o.Limits.MaxImagePixels,
            MaxCaptionBytes = o.Limits.MaxCaptionBytes, ImageSize = surrogate.IsReady ? surrogate.Model.Config.Vision.ImageSize : 0,
            MaxImageAspectRatio = o.Limits.MaxAspectRatio, MaxImageSide = o.Limits.MaxImageSide, MaxAnswerBytes = o.Limits.MaxAnswerBytes,
            Vocabularies = { o.Protection.Vocabularies() }, DefaultVocabulary = o.Protection.DefaultVocabulary,
            QueueCapacity = o.Batching.QueueCapacity, BulkQueueCapacity = o.Batching.BulkQueueCapacity,
            DefaultQueueTimeoutMs = (uint)o.Batching.DefaultQueueTimeout.TotalMilliseconds,
            DefaultTimeoutAction = o.Batching.DefaultTimeoutAction == QueueTimeoutAction.Delay ? TimeoutAction.Delay : TimeoutAction.Reject,
            Members =
            {
                surrogate.Described.Select(m => new SurrogateMember
                {
                    Architecture = m.Architecture, Checkpoint = m.Checkpoint ?? "", Release = m.Release ?? 0, Description = m.Description,
                }),
            },
            Strengths =
            {
                Enum.GetValues<Protection.ProtectionStrength>().Select(strength =>
                {
                    var level = o.Protection.Of(strength);
                    return new StrengthLevel
                    {
                        Strength = RequestValidation.Contract(strength), Epsilon = level.Epsilon, Rounds = level.Rounds, PgdSteps = level.PgdSteps,
                        RobustTo = { Protection.Robustness.PlatformTransforms.Describe(level.RobustTo) },
                    };
                }),
            },
        });
    }
}
