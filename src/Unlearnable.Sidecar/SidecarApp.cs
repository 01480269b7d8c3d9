using Unlearnable.Clip.Runtime;
using Unlearnable.Protection;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;
using Unlearnable.Contracts.V1;
using Unlearnable.Sidecar.Batching;
using Unlearnable.Sidecar.Model;
using Unlearnable.Sidecar.Observability;
using Unlearnable.Sidecar.Posts;
using Unlearnable.Sidecar.Profiles;
using Unlearnable.Hosting;
using Unlearnable.Sidecar.Admission;
using Unlearnable.Sidecar.Services;

namespace Unlearnable.Sidecar;

/// <summary>
/// Composition of the sidecar: gRPC (HTTP/2) on the "Grpc" endpoint, Prometheus metrics and
/// an HTTP health probe on the "Http" endpoint (Kestrel:Endpoints in appsettings.json), gRPC
/// health (NOT_SERVING until the model is warm) and reflection.
/// </summary>
public static class SidecarApp
{
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(args);
        configure?.Invoke(builder);

        var section = builder.Configuration.GetSection("Sidecar");
        // Settings that were renamed or replaced: ignored silently, they would leave a deployment without the limit it set.
        foreach (var (old, now) in new[] { ("Batching:MaxQueuedPixels", "Sidecar:Limits:PostMemoryBytes (bytes; decoded images count 4 a pixel)"),
                     ("Limits:MaxPostsInFlightPerApiKey", "Sidecar:Limits:MaxPostsInFlightPerTenant") })
            if (section.GetSection(old).Value is not null) throw new InvalidOperationException($"Sidecar:{old} is no longer read; set {now} instead");
        builder.Services.Configure<SidecarOptions>(section);
        var settings = section.Get<SidecarOptions>() ?? new SidecarOptions();
        if (settings.Protection.DefaultTriggerPolicy is not (TriggerPolicy.PerPost or TriggerPolicy.Sticky))
            throw new InvalidOperationException($"Sidecar:Protection:DefaultTriggerPolicy is {settings.Protection.DefaultTriggerPolicy}; use PerPost or Sticky");
        if (!settings.Protection.IsTriggerLength(settings.Protection.DefaultTriggerLength))
            throw new InvalidOperationException($"Sidecar:Protection:DefaultTriggerLength is {settings.Protection.DefaultTriggerLength}; it must be in 1..Sidecar:Protection:MaxTriggerLength ({settings.Protection.MaxTriggerLength})");
        if (!(settings.Protection.UserShare is >= 0 and < 1))
            throw new InvalidOperationException($"Sidecar:Protection:UserShare is {settings.Protection.UserShare}; it must be in [0, 1) (the share of ε spent on a user's shared pattern; 0 = off)");
        if (!(settings.Protection.InputDiversity is >= 0 and <= 1))
            throw new InvalidOperationException($"Sidecar:Protection:InputDiversity is {settings.Protection.InputDiversity}; it must be in [0, 1] (the share of PGD steps that see a shrunk, padded view; 0 = off)");
        if (!(settings.Protection.SkipErosion is >= 0 and < 1))
            throw new InvalidOperationException($"Sidecar:Protection:SkipErosion is {settings.Protection.SkipErosion}; it must be in [0, 1) (ξ by which PGD steps scale the surrogates' residual skips; 0 = off)");
        if (!Enum.IsDefined(settings.Protection.EnsembleStep))
            throw new InvalidOperationException($"Sidecar:Protection:EnsembleStep is {(int)settings.Protection.EnsembleStep}; use Mean or Drawn");
        settings.Model.Validate();
        if (settings.Model.Precision == Clip.Model.MatmulPrecision.Bfloat16) TorchRuntime.EnableBFloat16Kernels();   // before torch and the host's threads; the model's loading warns if it could not
        if (!settings.Protection.Vocabularies().Contains(settings.Protection.DefaultVocabulary))
            throw new InvalidOperationException($"Sidecar:Protection:DefaultVocabulary is '{settings.Protection.DefaultVocabulary}'; this server offers {string.Join(", ", settings.Protection.Vocabularies())}" +
                (settings.Protection.DefaultVocabulary == ProtectionDefaults.MaskedLmVocabulary ? " (mlm needs Sidecar:Protection:MaskedLm)" : ""));
        if (!string.IsNullOrWhiteSpace(settings.Protection.MaskedLm) && !Directory.Exists(settings.Protection.MaskedLm))
            throw new InvalidOperationException($"Sidecar:Protection:MaskedLm is '{settings.Protection.MaskedLm}', which is not a folder (a bert-base-uncased layout: config.json, model.safetensors, vocab.txt)");
        var limits = settings.Limits;
        if (limits.MaxPostsInFlight < 1 || limits.MaxPostsInFlightPerTenant < 1 || limits.MaxPostsInFlightPerUser < 1 || limits.MaxPostsInFlightPerStream < 1
            || limits.MaxConnections < 1 || limits.MaxProbeConnections < 1 || limits.MaxStreamsPerConnection is < 1 or > 8192)
            throw new InvalidOperationException("Sidecar:Limits:MaxPostsInFlight, MaxPostsInFlightPerTenant, MaxPostsInFlightPerUser, MaxPostsInFlightPerStream, MaxConnections and MaxProbeConnections " +
                "must each be at least 1, and MaxStreamsPerConnection between 1 and 8192");
        var batching = settings.Batching;
        if (batching.QueueCapacity < 1 || !(batching.BulkQueueShare is > 0 and <= 1) || !Enum.IsDefined(batching.DefaultTimeoutAction))
            throw new InvalidOperationException($"Sidecar:Batching: QueueCapacity must be at least 1 (is {batching.QueueCapacity}), BulkQueueShare in (0, 1] (is {batching.BulkQueueShare}), " +
                "DefaultTimeoutAction Reject or Delay");
        var longestQueueTimeout = TimeSpan.FromMilliseconds(Posts.RequestValidation.MaxQueueTimeoutMs);
        if (batching.MaxWait < TimeSpan.Zero || batching.MaxGather < TimeSpan.Zero || batching.DefaultQueueTimeout < TimeSpan.Zero || batching.DefaultQueueTimeout > longestQueueTimeout)
            throw new InvalidOperationException($"Sidecar:Batching:MaxWait ({batching.MaxWait}) and Sidecar:Batching:MaxGather ({batching.MaxGather}) cannot be negative, " +
                $"and Sidecar:Batching:DefaultQueueTimeout ({batching.DefaultQueueTimeout}) must be from 0 (none) to {longestQueueTimeout}");
        settings.Profiles.Store.Validate("Sidecar:Profiles:Store");
        if (!(limits.StreamShare is > 0 and <= 1)) throw new InvalidOperationException($"Sidecar:Limits:StreamShare is {limits.StreamShare}; it must be in (0, 1] (the share of MaxPostsInFlight streams may hold)");
        if (limits.MaxConnectionAge < TimeSpan.Zero || limits.MaxConnectionAge > TimeSpan.FromDays(1))
            throw new InvalidOperationException($"Sidecar:Limits:MaxConnectionAge is {limits.MaxConnectionAge}; give 0 (forever) to 1 day");
        if (limits.BodyReadTimeout < TimeSpan.Zero || limits.BodyReadTimeout > TimeSpan.FromDays(1))
            throw new InvalidOperationException($"Sidecar:Limits:BodyReadTimeout is {limits.BodyReadTimeout}; give 0 (no deadline) to 1 day");
        CheckMemory(limits);
        if (settings.Shutdown.GracePeriod < TimeSpan.Zero) throw new InvalidOperationException($"Sidecar:Shutdown:GracePeriod is {settings.Shutdown.GracePeriod}; it cannot be negative");
        var keys = ApiKeyPolicy.From(settings.Auth, builder.Environment.IsDevelopment(), "Sidecar");
        var profiles = settings.Profiles;
        int tenants = Math.Max(1, keys.StoringTenants);
        if (profiles.MaxStoredResultBytes < 1 || profiles.MaxStoredResultBytesPerTenant is { } perTenant && (perTenant < 1 || perTenant > profiles.MaxStoredResultBytes / tenants))
            throw new InvalidOperationException($"Sidecar:Profiles:MaxStoredResultBytesPerTenant ({profiles.MaxStoredResultBytesPerTenant}) times the {tenants} tenant(s) " +
                $"must fit in Sidecar:Profiles:MaxStoredResultBytes ({profiles.MaxStoredResultBytes}), or one tenant's posts could push out another's; leave it empty for an equal share");

        var connections = new ConnectionLifetimes();
        builder.Services.AddSingleton(connections);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestBodySize = settings.Limits.MaxMessageBytes;
            // One action for every listener (a second ConfigureEndpointDefaults would replace the first): the cap per listener
            // (the probes' and scrapes' is not the clients'), outermost so a refused connection is never tracked, then lifetimes.
            kestrel.ConfigureEndpointDefaults(listen =>
            {
                ConnectionCaps.Apply(listen, limits);
                connections.Apply(listen, limits);
            });
            // Streams that wait for an admission slot leave their received data unread, and unread data holds
            // the connection's flow-control window. A connection window as large as all its streams' windows
            // together means those streams can never starve the ones being read (which would deadlock).
            kestrel.Limits.Http2.MaxStreamsPerConnection = limits.MaxStreamsPerConnection;
            kestrel.Limits.Http2.InitialStreamWindowSize = LimitOptions.StreamWindowBytes;
            kestrel.Limits.Http2.InitialConnectionWindowSize = limits.MaxStreamsPerConnection * LimitOptions.StreamWindowBytes;
        });
        builder.AddUnlearnableDefaults<SurrogateHealthCheck>(keys, "surrogate", settings.Limits.MaxAnswerBytes + (1 << 20))
            .AddKeyedService<ProtectionGrpcService>(settings.Limits.MaxMessageBytes, o => o.Interceptors.Add<CallStatusInterceptor>());
        builder.Services.AddSingleton<SidecarMetrics>();
        if (settings.Profiles.Store.Provider == StoreProvider.PostgreSql) builder.Services.AddSingleton<IProfileStore, PostgresProfileStore>();
        else builder.Services.AddSingleton<IProfileStore, SqliteProfileStore>();
        builder.Services.AddSingleton<TriggerVocabularies>();
        builder.Services.AddSingleton(_ => new TorchThread());   // the surrogate is loaded and every batch runs on it
        builder.Services.AddSingleton<WarmSurrogate>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<WarmSurrogate>());
        builder.Services.AddSingleton<BatchRunner>();
        builder.Services.AddSingleton<MicroBatcher>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<MicroBatcher>());
        builder.Services.AddSingleton<AdmissionControl>();
        builder.Services.AddSingleton<InFlightPosts>();
        builder.Services.AddSingleton<IPostsInFlight>(sp => sp.GetRequiredService<InFlightPosts>());
        builder.Services.AddSingleton<CodecGate>();
        builder.Services.AddSingleton<CodecMemory>();
        builder.Services.AddSingleton<PostMemory>();
        builder.Services.AddSingleton<PostProtector>();
        builder.Services.AddHostedService<Drain>();   // after the batcher: stopped before it, so posts drain while it still runs
        builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = settings.Shutdown.GracePeriod + TimeSpan.FromSeconds(10));
        builder.Services.AddHostedService<ResultExpiry>();

        var app = builder.Build();
        app.UseUnlearnableDefaults(ProtectionService.Descriptor.FullName);   // before admission: no slot without a key
        if (GlibcMalloc.KeepFreedMemory() is { Count: > 0 } refused)
            app.Logger.LogInformation("The C library kept its own malloc {Settings} (not glibc, or refused): batches may slow down while images are finished",
                string.Join(", ", refused));
        app.UseMiddleware<AdmissionMiddleware>();
        app.MapGrpcService<ProtectionGrpcService>();
        app.MapDefaultEndpoints(services => services.GetRequiredService<WarmSurrogate>().IsReady && !services.GetRequiredService<AdmissionControl>().Draining);
        return app;
    }

    /// <summary>
    /// Refuses to start when what the limits let the server hold does not fit in the memory it may use: an OOM kill
    /// under load loses every post in flight, a refusal at start-up names the settings to change.
    /// </summary>
    static void CheckMemory(LimitOptions limits)
    {
        long finishLargest = CodecMemory.Cost("finish", limits.MaxImagePixels);
        if (limits.PostMemoryBytes < 1 || limits.ModelMemoryBytes < 0 || limits.CodecMemory < finishLargest)
            throw new InvalidOperationException($"Sidecar:Limits:PostMemoryBytes ({limits.PostMemoryBytes}) must be positive, ModelMemoryBytes ({limits.ModelMemoryBytes}) " +
                $"not negative, and Sidecar:Limits:CodecMemoryBytes ({limits.CodecMemory:N0}) at least what finishing the largest image allowed takes " +
                $"({finishLargest:N0} bytes for Sidecar:Limits:MaxImagePixels {limits.MaxImagePixels:N0}); leave CodecMemoryBytes empty for exactly that");
        long available = limits.MemoryBytes ?? ContainerMemory.Limit();
        var bounds = limits.MemoryBounds();
        long total = bounds.Sum(b => b.Bytes);
        if (total > available)
            throw new InvalidOperationException($"the memory limits add up to {total / (double)(1 << 30):0.00} GiB, more than the {available / (double)(1 << 30):0.00} GiB " +
                $"this server may use (Sidecar:Limits:MemoryBytes{(limits.MemoryBytes is null ? ", found from the container" : "")}): " +
                string.Join(", ", bounds.Select(b => $"{b.Setting} {b.Bytes / (double)(1 << 20):N0} MiB")) + "; lower them, or give the server more memory");
    }
}
