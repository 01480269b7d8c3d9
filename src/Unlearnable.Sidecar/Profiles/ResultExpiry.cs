namespace Unlearnable.Sidecar.Profiles;

/// <summary>Drops stored results past their retention time or byte budget, hourly; a failure is logged and tried again, never fatal.</summary>
public sealed class ResultExpiry(IProfileStore store, ILogger<ResultExpiry> log) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromHours(1));
        do
        {
            try
            {
                int dropped = store.Expire();
                if (dropped > 0) log.LogInformation("Dropped {Count} stored post results (expired or over the byte budget)", dropped);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                log.LogError(e, "Dropping old post results failed (disk full or database busy?); trying again in an hour");
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
