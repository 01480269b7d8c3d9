using Microsoft.Extensions.Options;
using Unlearnable.Sidecar.Posts;

namespace Unlearnable.Sidecar.Admission;

/// <summary>
/// Graceful shutdown. When the host is asked to stop (SIGTERM), health turns NOT_SERVING,
/// nothing new is admitted and every client connection is sent GOAWAY at once (its clients open
/// new connections, to other replicas); posts already admitted get Sidecar:Shutdown:GracePeriod
/// to be answered, then whatever is left is cancelled. Registered after the micro-batcher, so it
/// is stopped first and the batcher keeps working while posts drain.
/// </summary>
public sealed class Drain(AdmissionControl admission, InFlightPosts inFlight, ConnectionLifetimes connections, IOptions<SidecarOptions> options,
    IHostApplicationLifetime lifetime, ILogger<Drain> log) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        lifetime.ApplicationStopping.Register(() =>
        {
            admission.StartDraining();
            int asked = connections.CloseAll();
            log.LogInformation("Draining: NOT_SERVING, no new posts, {Connections} connections sent GOAWAY; {InFlight} posts in flight get {Grace} to finish",
                asked, admission.InFlight, options.Value.Shutdown.GracePeriod);
        });
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + options.Value.Shutdown.GracePeriod;
        while (admission.InFlight > 0 && DateTime.UtcNow < deadline && !cancellationToken.IsCancellationRequested)
            await Task.Delay(50, CancellationToken.None);
        if (admission.InFlight > 0)
        {
            log.LogWarning("Grace period over: cancelling {Count} posts still in flight", admission.InFlight);
            inFlight.CancelAll();
        }
    }
}
