using Microsoft.Extensions.Options;
using Unlearnable.Sidecar.Admission;
using Unlearnable.Sidecar.Observability;

namespace Unlearnable.Sidecar.Tests;

/// <summary>One tenant cannot take the whole post memory or every stream slot: each holds at most its share.</summary>
public class TenantShareTests
{
    static IOptions<SidecarOptions> Limits(long memory = 1 << 20) => Options.Create(new SidecarOptions
    {
        Limits = { PostMemoryBytes = memory, MaxPostsInFlight = 8, MaxPostsInFlightPerTenant = 6, StreamShare = 0.5 },
    });

    [Fact]
    public void ATenantHoldsAtMostItsShareOfThePostMemory()
    {
        var memory = new PostMemory(Limits(memory: 1000));
        Assert.Equal(750, memory.TenantBudget);   // 6 of 8 posts' worth
        var acme = memory.TryHold("acme", 600)!;
        Assert.Null(memory.TryHold("acme", 200));              // past acme's 750
        Assert.Contains("Sidecar:Limits:PostMemoryBytes", memory.Refusal("acme", "its body", 200));
        var globex = memory.TryHold("globex", 300)!;           // globex's own share, within the server's 1,000
        Assert.Null(memory.TryHold("globex", 200));            // past the server's
        using (memory.Count("globex", 500)) Assert.Equal(1400, memory.HeldBytes);   // what is done is counted, whatever the budget
        acme.Dispose();
        globex.Dispose();
        Assert.Equal(0, memory.HeldBytes);
        using var alone = memory.TryHold("acme", 5000);        // one post alone may pass both
        Assert.NotNull(alone);
    }

    [Fact]
    public async Task ATenantsStreamsHoldAtMostItsShareOfTheStreamSlots()
    {
        var admission = new AdmissionControl(Limits(), new SidecarMetrics());
        Assert.Equal(3, Limits().Value.Limits.TenantStreamSlots);   // 6/8 of the 4 stream slots
        var held = new List<AdmissionControl.Slot>();
        for (int i = 0; i < 3; i++) held.Add(await admission.EnterAsync("acme", CancellationToken.None));
        var fourth = admission.EnterAsync("acme", CancellationToken.None);   // e.g. another idle session of acme's
        await Task.Delay(100);
        Assert.False(fourth.IsCompleted);
        var other = await admission.EnterAsync("globex", CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5));   // globex's stream still reads
        held[0].Dispose();
        held.Add(await fourth.WaitAsync(TimeSpan.FromSeconds(5)));
        other.Dispose();
        foreach (var slot in held) slot.Dispose();
        Assert.Equal(0, admission.InFlight);
    }
}
