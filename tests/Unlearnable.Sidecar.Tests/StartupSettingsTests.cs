using Microsoft.Extensions.Configuration;

namespace Unlearnable.Sidecar.Tests;

/// <summary>A setting the sidecar cannot honour stops start-up with a message that names it, instead of failing later per post.</summary>
public class StartupSettingsTests
{
    [Theory]
    [InlineData("Sidecar:Protection:UserShare", "1")]
    [InlineData("Sidecar:Protection:UserShare", "-0.2")]
    [InlineData("Sidecar:Protection:InputDiversity", "1.5")]
    [InlineData("Sidecar:Protection:SkipErosion", "1")]
    [InlineData("Sidecar:Protection:EnsembleStep", "Sometimes")]
    [InlineData("Sidecar:Protection:EnsembleStep", "3")]
    [InlineData("Sidecar:Protection:DefaultTriggerPolicy", "Unspecified")]
    [InlineData("Sidecar:Protection:DefaultTriggerLength", "0")]
    [InlineData("Sidecar:Protection:DefaultTriggerLength", "9")]             // above MaxTriggerLength 8
    [InlineData("Sidecar:Protection:DefaultVocabulary", "mlm")]
    [InlineData("Sidecar:Protection:DefaultVocabulary", "klingon")]
    [InlineData("Sidecar:Protection:MaskedLm", "/no/such/bert")]
    [InlineData("Sidecar:Model:Preset", "rn49")]
    [InlineData("Sidecar:Model:DefaultTrainingImages", "1")]
    [InlineData("Sidecar:Model:DefaultTrainingEpochs", "0")]
    [InlineData("Sidecar:Model:PublicFaces", "/no/such/faces")]
    [InlineData("Sidecar:Model:Hardening:Steps", "-1")]
    [InlineData("Sidecar:Model:Hardening:Steps", "10001")]
    [InlineData("Sidecar:Model:Hardening:Epsilon", "0")]
    [InlineData("Sidecar:Model:Hardening:Epsilon", "17")]
    [InlineData("Sidecar:Limits:MaxPostsInFlight", "0")]
    [InlineData("Sidecar:Shutdown:GracePeriod", "-00:00:01")]
    [InlineData("Sidecar:Limits:BodyReadTimeout", "-00:00:01")]
    [InlineData("Sidecar:Limits:StreamShare", "0")]
    [InlineData("Sidecar:Batching:MaxWait", "-00:00:00.010")]
    [InlineData("Sidecar:Batching:MaxGather", "-00:00:01")]
    [InlineData("Sidecar:Batching:DefaultQueueTimeout", "2.00:00:00")]
    [InlineData("Sidecar:Profiles:Store:Provider", "PostgreSql")]          // with no connection string
    [InlineData("Sidecar:Profiles:Store:Provider", "Oracle")]
    [InlineData("Sidecar:Profiles:Store:ConnectionString", "Host=db;Bogus Key=1")]
    [InlineData("Sidecar:Limits:MemoryBytes", "2147483648")]               // the default bounds add up to about 3.8 GiB
    [InlineData("Sidecar:Limits:CodecMemoryBytes", "100000000")]           // less than finishing one 50-megapixel image takes
    [InlineData("Sidecar:Limits:PostMemoryBytes", "0")]
    [InlineData("Sidecar:Batching:MaxQueuedPixels", "200000000")]         // replaced by PostMemoryBytes
    [InlineData("Sidecar:Limits:MaxPostsInFlightPerApiKey", "48")]         // renamed MaxPostsInFlightPerTenant
    [InlineData("Sidecar:Model:PreparedDirectory", "/nonexistent/models")]  // a volume not mounted
    [InlineData("Sidecar:Model:Precision", "Float16")]
    [InlineData("Sidecar:Model:Precision", "2")]                            // a number the enum does not name
    public void AnImpossibleSettingStopsStartUpNamingIt(string key, string value)
    {
        var e = Assert.Throws<InvalidOperationException>(() => SidecarApp.Build(["--environment", "Development"],
            b => b.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { [key] = value })));
        Assert.Contains(key, e.Message);
    }

    [Theory]
    [InlineData("Sidecar:Model:Members:1:Preset", "Members:0:Preset=tiny", "Members:1:Preset=rn49")]
    [InlineData("Sidecar:Model:Members:0 and Sidecar:Model:Members:1", "Members:0:Release=1", "Members:1:Release=1")]   // the same release twice
    [InlineData("Sidecar:Model:Members:1", "Members:0:Release=0", "Members:1:Checkpoint=/models/a.safetensors", "Members:1:Release=2")]
    [InlineData("Sidecar:Model:Checkpoint", "Checkpoint=/models/a.safetensors", "Members:0:Release=1")]
    [InlineData("Sidecar:Model:Members", "Members:0:Preset=tiny", "Members:1:Preset=vitb32")]   // 64 and 224 px
    [InlineData("Sidecar:Model:Members", "Members:0:Release=0", "Members:1:Release=1", "Members:2:Release=2", "Members:3:Release=3", "Members:4:Release=4",
        "Members:5:Release=5", "Members:6:Release=6", "Members:7:Release=7", "Members:8:Release=8")]
    public void AnEnsembleThatCannotBeServedStopsStartUpNamingTheMember(string named, params string[] settings)
    {
        var e = Assert.Throws<InvalidOperationException>(() => SidecarApp.Build(["--environment", "Development"],
            b => b.Configuration.AddInMemoryCollection(settings.Select(s => s.Split('='))
                .ToDictionary(kv => "Sidecar:Model:" + kv[0], kv => (string?)kv[1]))));
        Assert.Contains(named, e.Message);
    }

    [Theory]
    [InlineData("Sidecar:Auth:Tenants", "Tenants:key-abc:0=k1")]                                 // names of keys' own tenants are reserved
    [InlineData("Sidecar:Auth:Tenants", "Tenants:default:0=k1")]
    [InlineData("Sidecar:Auth:Tenants", "Tenants:a b:0=k1")]
    [InlineData("Sidecar:Auth:Tenants:acme", "Tenants:acme:0= ")]                                 // a tenant without keys
    [InlineData("Sidecar:Auth:ApiKeys and Sidecar:Auth:Tenants", "Tenants:acme:0=k1", "Tenants:globex:0=k1")]   // one key, two tenants
    [InlineData("Sidecar:Auth:ApiKeys and Sidecar:Auth:Tenants", "ApiKeys:0=k1", "Tenants:acme:0=k1")]
    [InlineData("Sidecar:Auth:LegacyTenant", "Tenants:acme:0=k1", "LegacyTenant=initech")]
    [InlineData("Sidecar:Profiles:MaxStoredResultBytesPerTenant", "Tenants:acme:0=k1", "Tenants:globex:0=k2", "../Profiles/MaxStoredResultBytes=1000",
        "../Profiles/MaxStoredResultBytesPerTenant=600")]                                          // two shares of 600 in a budget of 1,000
    public void TenantsThatCannotBeKeptApartStopStartUpNamingTheSetting(string named, params string[] settings)
    {
        var e = Assert.Throws<InvalidOperationException>(() => SidecarApp.Build(["--environment", "Production"],
            b => b.Configuration.AddInMemoryCollection(settings.Select(s => s.Split('='))
                .ToDictionary(kv => kv[0].StartsWith("../", StringComparison.Ordinal) ? "Sidecar:" + kv[0][3..].Replace('/', ':') : "Sidecar:Auth:" + kv[0], kv => (string?)kv[1]))));
        Assert.Contains(named, e.Message);
    }

    [Fact]
    public void WithNothingNamedTheSurrogatesAreTheDefaultEnsembleHardened()
    {
        static ModelOptions Bound(params (string Key, string Value)[] settings) => new ConfigurationBuilder()
            .AddJsonFile(Path.Combine(AppContext.BaseDirectory, "appsettings.json"))   // the shipped settings
            .AddInMemoryCollection(settings.ToDictionary(kv => "Sidecar:Model:" + kv.Key, kv => (string?)kv.Value)).Build()
            .GetSection("Sidecar").Get<SidecarOptions>()!.Model;
        var defaults = Bound(("Seed", "4"));
        Assert.Equal(Protection.PublicModel.DefaultEnsemble, defaults.Surrogates().Select(m => m.PublicPreset.Name));
        Assert.All(defaults.Surrogates(), m => Assert.Equal(4, defaults.ReleaseOf(m)));
        Assert.Equal((Protection.Robustness.AdversarialHardening.DefaultSteps, 2.0 / 255, 4), (defaults.HardeningSettings()!.Steps, defaults.HardeningSettings()!.Epsilon, defaults.HardeningSettings()!.Seed));
        // A preset or a checkpoint names one surrogate instead; Steps 0 turns hardening off.
        Assert.Equal(["tiny-vit"], Bound(("Preset", "tiny-vit")).Surrogates().Select(m => m.PublicPreset.Name));
        Assert.Equal(["/models/rn50.safetensors"], Bound(("Checkpoint", "/models/rn50.safetensors")).Surrogates().Select(m => m.Checkpoint));
        Assert.Null(Bound(("Hardening:Steps", "0")).HardeningSettings());
        // Posts get the measured trigger length, defined once (not pinned in the shipped settings).
        var protection = new ConfigurationBuilder().AddJsonFile(Path.Combine(AppContext.BaseDirectory, "appsettings.json")).Build()
            .GetSection("Sidecar").Get<SidecarOptions>()!.Protection;
        Assert.Equal(Protection.StrengthLevel.DefaultTriggerLength, protection.DefaultTriggerLength);
    }

    [Fact]
    public void TheTransferLeversReachEveryBatchsOptions()
    {
        var bound = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Protection:InputDiversity"] = "0.5", ["Protection:EnsembleStep"] = "Drawn", ["Protection:TopK"] = "9", ["Protection:SkipErosion"] = "0.2",
        }).Build().Get<SidecarOptions>()!;
        var options = bound.Protection.PostOptions(bound.Protection.Medium, epsilon: 6, triggerLength: 3, seed: 4, Clip.Model.MatmulPrecision.Float32);
        Assert.Equal((0.5, Protection.EnsembleStep.Drawn, 0.2, 9, 6.0 / 255, 4), (options.InputDiversity, options.EnsembleStep, options.SkipErosion, options.TopK, options.Epsilon, options.Seed));
        var plain = new SidecarOptions().Protection;
        var defaults = plain.PostOptions(plain.Medium, 8, 3, 0, Clip.Model.MatmulPrecision.Float32);
        Assert.Equal((0.0, Protection.EnsembleStep.Mean), (defaults.InputDiversity, defaults.EnsembleStep));
    }

    [Fact]
    public void EachKeyIsItsTenantsAndRotatedKeysShareOne()
    {
        var keys = Hosting.ApiKeyPolicy.From(new Hosting.AuthOptions
        {
            ApiKeys = ["solo-key"], Tenants = { ["acme"] = ["acme-old", "acme-new"] }, LegacyTenant = "acme",
        }, development: false, "Sidecar");
        Assert.Equal("acme", keys.TenantOf("acme-old"));
        Assert.Equal("acme", keys.TenantOf("acme-new"));
        Assert.Equal(Hosting.ApiKeyPolicy.KeyTenant("solo-key"), keys.TenantOf("solo-key"));
        Assert.StartsWith("key-", keys.TenantOf("solo-key"));
        Assert.DoesNotContain("solo", keys.TenantOf("solo-key"));   // stores never hold a key
        Assert.Null(keys.TenantOf("made-up"));
        Assert.Null(keys.TenantOf(null));
        Assert.Equal(["acme", Hosting.ApiKeyPolicy.KeyTenant("solo-key")], keys.Tenants.Order(StringComparer.Ordinal));

        var open = Hosting.ApiKeyPolicy.From(new Hosting.AuthOptions { RequireApiKey = false }, development: false, "Sidecar");
        Assert.Equal(Hosting.ApiKeyPolicy.OpenTenant, open.TenantOf(null));
        Assert.Equal(Hosting.ApiKeyPolicy.OpenTenant, open.LegacyTenant);
        Assert.Null(Hosting.ApiKeyPolicy.From(new Hosting.AuthOptions { Tenants = { ["a"] = ["1"], ["b"] = ["2"] } }, false, "Sidecar").LegacyTenant);
    }
}
