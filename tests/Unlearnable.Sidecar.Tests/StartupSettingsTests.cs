using Microsoft.Extensions.Configuration;

namespace Unlearnable.Sidecar.Tests;

/// <summary>A setting the sidecar cannot honour stops start-up with a message that names it, instead of failing later per post.</summary>
public class StartupSettingsTests
{
    [Theory]
    [InlineData("Sidecar:Protection:UserShare", "1")]
    [InlineData("Sidecar:Protection:UserShare", "-0.2")]
    [InlineData("Sidecar:Protection:DefaultTriggerPolicy", "Unspecified")]
    [InlineData("Sidecar:Protection:DefaultVocabulary", "mlm")]
    [InlineData("Sidecar:Protection:DefaultVocabulary", "klingon")]
    [InlineData("Sidecar:Protection:MaskedLm", "/no/such/bert")]
    [InlineData("Sidecar:Model:Preset", "rn49")]
    [InlineData("Sidecar:Model:DefaultTrainingImages", "1")]
    [InlineData("Sidecar:Model:DefaultTrainingEpochs", "0")]
    [InlineData("Sidecar:Model:PublicFaces", "/no/such/faces")]
    [InlineData("Sidecar:Limits:MaxPostsInFlight", "0")]
    [InlineData("Sidecar:Shutdown:GracePeriod", "-00:00:01")]
    [InlineData("Sidecar:Batching:MaxWait", "-00:00:00.010")]
    [InlineData("Sidecar:Batching:MaxGather", "-00:00:01")]
    [InlineData("Sidecar:Batching:DefaultQueueTimeout", "2.00:00:00")]
    [InlineData("Sidecar:Profiles:Store:Provider", "PostgreSql")]          // with no connection string
    [InlineData("Sidecar:Profiles:Store:Provider", "Oracle")]
    [InlineData("Sidecar:Profiles:Store:ConnectionString", "Host=db;Bogus Key=1")]
    public void AnImpossibleSettingStopsStartUpNamingIt(string key, string value)
    {
        var e = Assert.Throws<InvalidOperationException>(() => SidecarApp.Build(["--environment", "Development"],
            b => b.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { [key] = value })));
        Assert.Contains(key, e.Message);
    }
}
