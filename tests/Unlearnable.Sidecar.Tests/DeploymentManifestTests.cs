using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.Serialization;
using Unlearnable.Tests;

namespace Unlearnable.Sidecar.Tests;

/// <summary>
/// The Kubernetes overlays as kubectl kustomize renders them (kubectl 1.35 with kustomize 5.7, unpacked by
/// build/lint-deploy.sh): every object is well formed, selectors find their pods, Services and
/// probes use ports the containers declare and the images serve, containers run locked down,
/// the sidecar's drain fits the pod's grace period, and only the GPU overlay asks for GPUs.
/// </summary>
[Trait("Kind", "Process")]
public partial class DeploymentManifestTests
{
    static readonly string Root = RepoFiles.Root;

    static string? Kubectl()
    {
        var unpacked = Path.Combine(Root, "build", ".tools", "kubernetes", "kubectl");
        if (File.Exists(unpacked)) return unpacked;
        return (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, "kubectl")).FirstOrDefault(File.Exists);
    }

    static List<JsonObject> Render(string overlay)
    {
        var kubectl = Kubectl();
        Skip.If(kubectl is null, "no kubectl: run build/lint-deploy.sh (which .ci/run runs) to unpack kubectl 1.35");
        var start = new ProcessStartInfo(kubectl!) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("kustomize");
        start.ArgumentList.Add(Path.Combine(Root, "deploy", "kubernetes", overlay));
        using var process = Process.Start(start)!;
        var errors = process.StandardError.ReadToEndAsync();
        var yaml = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"kubectl kustomize {overlay} failed: {errors.Result}");
        var reader = new DeserializerBuilder().Build();
        var json = new SerializerBuilder().JsonCompatible().Build();
        var objects = new List<JsonObject>();
        IParser parser = new Parser(new StringReader(yaml));
        parser.Consume<StreamStart>();
        while (parser.Accept<DocumentStart>(out _))
        {
            var document = reader.Deserialize<object>(parser);
            if (document is not null) objects.Add(JsonNode.Parse(json.Serialize(document))!.AsObject());
        }
        return objects;
    }

    static string S(JsonNode? node) => node?.ToString() ?? "";
    static IEnumerable<JsonObject> Kind(List<JsonObject> all, string kind) => all.Where(o => S(o["kind"]) == kind);
    static IEnumerable<JsonObject> Items(JsonNode? array) => array?.AsArray().Select(n => n!.AsObject()) ?? [];
    static Dictionary<string, string> Map(JsonNode? node) => node?.AsObject().ToDictionary(p => p.Key, p => S(p.Value)) ?? [];
    static bool Selects(Dictionary<string, string> selector, Dictionary<string, string> labels) => selector.Count > 0 && selector.All(s => labels.GetValueOrDefault(s.Key) == s.Value);

    // The ports each image serves, from its Dockerfile's Kestrel endpoints (gRPC is the HTTP/2 one).
    [GeneratedRegex(@"Kestrel__Endpoints__(\w+)__Url=http://0\.0\.0\.0:(\d+)")]
    private static partial Regex KestrelEndpoint();

    static Dictionary<string, int> ServedPorts(string image)
    {
        var dockerfile = File.ReadAllText(Path.Combine(Root, "deploy", image.Contains("evaluation") ? "Dockerfile.evaluation-host" : "Dockerfile.sidecar"));
        return KestrelEndpoint().Matches(dockerfile).ToDictionary(m => m.Groups[1].Value, m => int.Parse(m.Groups[2].Value));
    }

    [Theory]
    [InlineData("Dockerfile.sidecar")]
    [InlineData("Dockerfile.evaluation-host")]
    public void EachImageCapsMallocArenas(string dockerfile)
    {
        var text = File.ReadAllText(Path.Combine(Root, "deploy", dockerfile));
        Assert.Matches($@"(?m)^ENV {Hosting.GlibcMalloc.ArenaVariable}={Hosting.GlibcMalloc.Arenas}\s*$", text);
        // Set in the stage that runs, not only in the build stage.
        Assert.True(text.IndexOf("ENV " + Hosting.GlibcMalloc.ArenaVariable, StringComparison.Ordinal) > text.LastIndexOf("FROM ", StringComparison.Ordinal), $"{dockerfile} sets it before its final FROM");
    }

    // The other malloc setting the sidecar depends on needs no image: it fixes glibc's thresholds itself at start.
    [Fact]
    public void GlibcMallocThresholdsAreFixedAtRunTime()
    {
        Assert.True(OperatingSystem.IsLinux(), "the sidecar's hosts and CI run on Linux");
        Assert.Empty(Hosting.GlibcMalloc.KeepFreedMemory());   // none refused
    }

    static int ResolvePort(JsonObject container, string port) => int.TryParse(port, out var number) ? number
        : Items(container["ports"]).Where(p => S(p["name"]) == port).Select(p => int.Parse(S(p["containerPort"]))).DefaultIfEmpty(-1).First();

    static void CheckWorkloads(List<JsonObject> all, string overlay)
    {
        Assert.All(all, o => Assert.False(string.IsNullOrEmpty(S(o["apiVersion"])) || string.IsNullOrEmpty(S(o["kind"])) || string.IsNullOrEmpty(S(o["metadata"]?["name"])),
            $"{overlay}: an object without apiVersion, kind or name"));
        Assert.Equal(all.Count, all.Select(o => $"{S(o["kind"])}/{S(o["metadata"]?["namespace"])}/{S(o["metadata"]?["name"])}").Distinct().Count());
        var deployments = Kind(all, "Deployment").ToList();
        Assert.NotEmpty(deployments);
        foreach (var deployment in deployments)
        {
            string name = S(deployment["metadata"]!["name"]);
            var pod = deployment["spec"]!["template"]!;
            var podLabels = Map(pod["metadata"]!["labels"]);
            Assert.True(Selects(Map(deployment["spec"]!["selector"]!["matchLabels"]), podLabels), $"{overlay}: {name}'s selector does not match its pods");
            var spec = pod["spec"]!.AsObject();
            Assert.True(S(spec["automountServiceAccountToken"]) == "false", $"{overlay}: {name} mounts a service account token (Kubernetes' default) it never uses");
            var volumes = Items(spec["volumes"]).Select(v => S(v["name"])).ToHashSet();
            // Native sidecars (init containers that keep running) are checked as containers.
            foreach (var container in Items(spec["containers"]).Concat(Items(spec["initContainers"]).Where(c => S(c["restartPolicy"]) == "Always")))
            {
                string image = S(container["image"]), label = $"{overlay}: {name}/{S(container["name"])}";
                if (!image.Contains("unlearnable")) continue;   // a backend's own container
                var security = container["securityContext"]!;
                Assert.True(S(security["readOnlyRootFilesystem"]) == "true" && S(security["allowPrivilegeEscalation"]) == "false", $"{label} is not locked down");
                Assert.Equal("ALL", S(security["capabilities"]!["drop"]![0]));
                Assert.True(S(security["runAsNonRoot"]) == "true" || S(spec["securityContext"]?["runAsNonRoot"]) == "true", $"{label} may run as root");
                Assert.All(Items(container["volumeMounts"]), m => Assert.Contains(S(m["name"]), volumes));
                Assert.Contains(Items(container["volumeMounts"]), m => S(m["mountPath"]) == "/tmp");   // .NET needs a writable /tmp

                // Probes ask the image's own gRPC (HTTP/2) endpoint, which the container declares.
                var served = ServedPorts(image);
                var declared = Items(container["ports"]).Select(p => int.Parse(S(p["containerPort"]))).ToHashSet();
                Assert.True(declared.SetEquals(served.Values), $"{label} declares ports {string.Join(",", declared)}; the image serves {string.Join(",", served.Values)}");
                var readiness = container["readinessProbe"]?["grpc"];
                Assert.True(readiness is not null, $"{label} has no gRPC readinessProbe");
                Assert.Equal(served["Grpc"], ResolvePort(container.AsObject(), S(readiness!["port"])));
                foreach (var probe in new[] { "startupProbe", "livenessProbe" })
                {
                    if (container[probe] is not { } check) { Assert.True(probe != "livenessProbe", $"{label} has no livenessProbe"); continue; }
                    if (check["grpc"] is { } grpc) Assert.Equal(served["Grpc"], ResolvePort(container.AsObject(), S(grpc["port"])));
                    else Assert.Equal(served["Http"], ResolvePort(container.AsObject(), S(check["httpGet"]!["port"])));
                }
                // Thread pools follow the CPUs the pod asks for (the downward API), which it must ask for.
                var cpus = Items(container["env"]).FirstOrDefault(e => S(e["name"]) == "DOTNET_PROCESSOR_COUNT")?["valueFrom"]?["resourceFieldRef"];
                Assert.True(cpus is not null && S(cpus["resource"]) == "requests.cpu" && S(cpus["containerName"]) == S(container["name"]),
                    $"{label} does not size its threads by its CPU request");
                Assert.False(string.IsNullOrEmpty(S(container["resources"]?["requests"]?["cpu"])), $"{label} asks for no CPU");
                // Capped at what it asks for: its thread pools are sized for that many CPUs, so it runs as it was measured.
                Assert.True(S(container["resources"]?["limits"]?["cpu"]) == S(container["resources"]!["requests"]!["cpu"]),
                    $"{label}'s CPU limit ({S(container["resources"]?["limits"]?["cpu"])}) is not its request ({S(container["resources"]!["requests"]!["cpu"])})");
                var keys = Items(container["env"]).Select(e => S(e["valueFrom"]?["secretKeyRef"]?["name"])).Where(n => n != "");
                Assert.All(keys, k => Assert.Contains(k, new[] { "unlearnable-api-keys", "unlearnable-postgres" }));
                Assert.DoesNotContain(Items(container["env"]), e => S(e["name"]).Contains("ApiKeys") && e["value"] is not null);   // keys only from Secrets

                // The drain: the grace period for admitted posts, then 10 s for the host to stop, within the pod's grace.
                var grace = Items(container["env"]).FirstOrDefault(e => S(e["name"]) == "Sidecar__Shutdown__GracePeriod");
                if (image.Contains("sidecar"))
                {
                    Assert.True(grace is not null, $"{label} does not set its drain");
                    // A sidecar that clients reach through a Service first waits (preStop) while the endpoints and DNS drop it;
                    // one inside a backend's pod is reached on localhost.
                    var preStop = container["lifecycle"]?["preStop"]?["sleep"]?["seconds"];
                    bool ownPod = name == "unlearnable-sidecar";
                    Assert.True(!ownPod || preStop is not null && int.Parse(S(preStop)) >= 3, $"{label} has no preStop delay for the endpoints to drop it");
                    var drain = TimeSpan.FromSeconds(preStop is null ? 0 : int.Parse(S(preStop))) + TimeSpan.Parse(S(grace!["value"])) + TimeSpan.FromSeconds(10);
                    Assert.True(int.Parse(S(spec["terminationGracePeriodSeconds"])) >= drain.TotalSeconds, $"{label}: the pod's grace period is shorter than the sidecar's drain ({drain.TotalSeconds} s)");
                }
            }
        }
        foreach (var service in Kind(all, "Service"))
        {
            var selector = Map(service["spec"]!["selector"]);
            var target = deployments.SingleOrDefault(d => Selects(selector, Map(d["spec"]!["template"]!["metadata"]!["labels"])));
            Assert.True(target is not null, $"{overlay}: Service {S(service["metadata"]!["name"])} selects no pods");
            var containers = Items(target!["spec"]!["template"]!["spec"]!["containers"]).ToList();
            foreach (var port in Items(service["spec"]!["ports"]))
                Assert.Contains(containers, c => ResolvePort(c, S(port["targetPort"])) > 0);
        }
        foreach (var budget in Kind(all, "PodDisruptionBudget"))
            Assert.Contains(deployments, d => Selects(Map(budget["spec"]!["selector"]!["matchLabels"]), Map(d["spec"]!["template"]!["metadata"]!["labels"])));
    }

    [SkippableTheory]
    [InlineData("overlays/cpu", false)]
    [InlineData("overlays/gpu", true)]
    public void TheOverlaysRenderConsistentLockedDownServices(string overlay, bool gpu)
    {
        var all = Render(overlay);
        CheckWorkloads(all, overlay);
        Assert.All(all.Where(o => S(o["kind"]) != "Namespace"), o => Assert.Equal("unlearnable", S(o["metadata"]!["namespace"])));
        var deployments = Kind(all, "Deployment").ToDictionary(d => S(d["metadata"]!["name"]));
        Assert.Equal(["unlearnable-evaluation-host", "unlearnable-sidecar"], deployments.Keys.Order());

        // Resources in every overlay; GPUs only in the GPU one, with the device set to CUDA.
        foreach (var (name, deployment) in deployments)
        {
            var container = deployment["spec"]!["template"]!["spec"]!["containers"]![0]!;
            Assert.False(string.IsNullOrEmpty(S(container["resources"]?["limits"]?["memory"])), $"{overlay}: {name} has no memory limit");
            Assert.Equal(gpu, S(container["resources"]?["limits"]?["nvidia.com/gpu"]) == "1");
            Assert.Equal(gpu, Items(container["env"]).Any(e => S(e["name"]).EndsWith("Device") && S(e["value"]) == "cuda"));
            Assert.EndsWith(gpu ? "-cuda" : "1.0.0", S(container["image"]));
        }

        // Several sidecar replicas, counted by the autoscaler alone, share state: PostgreSQL for profiles and the job queue.
        var sidecar = deployments["unlearnable-sidecar"];
        Assert.Null(sidecar["spec"]!["replicas"]);
        Assert.Contains(Items(sidecar["spec"]!["template"]!["spec"]!["containers"]![0]!["env"]), e => S(e["name"]) == "Sidecar__Profiles__Store__Provider" && S(e["value"]) == "PostgreSql");

        // Clients balance per call over a headless Service (one DNS record per ready replica) on the gRPC port.
        var headless = Kind(all, "Service").SingleOrDefault(svc => S(svc["spec"]!["clusterIP"]) == "None");
        Assert.True(headless is not null, $"{overlay}: no headless Service for per-call balancing");
        Assert.True(Selects(Map(headless!["spec"]!["selector"]), Map(sidecar["spec"]!["template"]!["metadata"]!["labels"])));
        Assert.Equal(["grpc"], Items(headless["spec"]!["ports"]).Select(p => S(p["targetPort"])));

        // Autoscaling on the sidecar's own queue metric, which the sidecar exports under that name.
        var hpa = Kind(all, "HorizontalPodAutoscaler").Single();
        Assert.Equal("unlearnable-sidecar", S(hpa["spec"]!["scaleTargetRef"]!["name"]));
        Assert.True(int.Parse(S(hpa["spec"]!["minReplicas"])) >= 2);
        var metric = S(hpa["spec"]!["metrics"]![0]!["pods"]!["metric"]!["name"]);
        Assert.Contains($"\"{metric}\"", File.ReadAllText(Path.Combine(Root, "src", "Unlearnable.Sidecar", "Observability", "SidecarMetrics.cs")));
        Assert.Contains(metric, File.ReadAllText(Path.Combine(Root, "deploy", "kubernetes", "prometheus-adapter-rules.yaml")));

        // Both hosts are private: ingress only from labelled clients on their gRPC ports, and from Prometheus on their metrics ports.
        var policies = Kind(all, "NetworkPolicy").ToList();
        foreach (var (host, grpc, http) in new[] { ("unlearnable-evaluation-host", "5061", "5062"), ("unlearnable-sidecar", "5051", "5052") })
        {
            var policy = policies.Single(p => Selects(Map(p["spec"]!["podSelector"]!["matchLabels"]), Map(deployments[host]["spec"]!["template"]!["metadata"]!["labels"])));
            Assert.Contains("Ingress", policy["spec"]!["policyTypes"]!.AsArray().Select(S));
            var rules = Items(policy["spec"]!["ingress"]).ToList();
            Assert.Equal([grpc, http], rules.SelectMany(r => Items(r["ports"])).Select(p => S(p["port"])).Order());
            Assert.All(rules, r => Assert.NotEmpty(Items(r["from"])));   // no rule open to every pod
            var scrape = rules.Single(r => Items(r["ports"]).Any(p => S(p["port"]) == http));
            Assert.All(Items(scrape["from"]), f => Assert.Equal("prometheus", S(f["podSelector"]?["matchLabels"]?["app.kubernetes.io/name"])));
        }

        // Sidecar replicas prefer different nodes.
        var spread = Items(sidecar["spec"]!["template"]!["spec"]!["topologySpreadConstraints"]).Single();
        Assert.Equal("kubernetes.io/hostname", S(spread["topologyKey"]));
        Assert.True(Selects(Map(spread["labelSelector"]!["matchLabels"]), Map(sidecar["spec"]!["template"]!["metadata"]!["labels"])));

        // The namespace (with the Secrets and the job volume in it) is made once, outside the overlays: deleting an overlay keeps it.
        Assert.DoesNotContain(all, o => S(o["kind"]) == "Namespace");
        var claim = S(Items(deployments["unlearnable-evaluation-host"]["spec"]!["template"]!["spec"]!["volumes"]).Single(v => S(v["name"]) == "data")["persistentVolumeClaim"]!["claimName"]);
        Assert.Contains(Kind(all, "PersistentVolumeClaim"), c => S(c["metadata"]!["name"]) == claim);
        Assert.DoesNotContain(all, o => S(o["kind"]) is "Ingress" or "Route");
    }

    [SkippableFact]
    public void TheMonitoringScrapesBothHostsAndNamesOnlyMetricsTheyExport()
    {
        var monitoring = Render("monitoring");
        var workloads = Kind(Render("overlays/cpu"), "Deployment").ToList();
        // The PodMonitor selects both hosts' pods and scrapes a port each declares.
        var podMonitor = Kind(monitoring, "PodMonitor").Single();
        var selected = podMonitor["spec"]!["selector"]!["matchExpressions"]![0]!["values"]!.AsArray().Select(S).ToList();
        Assert.Equal(["unlearnable-evaluation-host", "unlearnable-sidecar"], selected.Order());
        var port = S(podMonitor["spec"]!["podMetricsEndpoints"]![0]!["port"]);
        Assert.All(workloads, d => Assert.Contains(Items(d["spec"]!["template"]!["spec"]!["containers"]![0]!["ports"]), p => S(p["name"]) == port));

        // Alerts for each thing the contract names.
        var alerts = Kind(monitoring, "PrometheusRule").Single()["spec"]!["groups"]!.AsArray().SelectMany(g => Items(g!["rules"])).ToList();
        var names = alerts.Select(a => S(a["alert"])).ToList();
        foreach (var topic in new[] { "Refused", "Queue", "NotServing", "Restarts", "OomKilled", "Slow" })
            Assert.Contains(names, n => n.Contains(topic));

        // Every unlearnable_ metric an alert, the dashboard or the autoscaler's adapter rule reads is one the hosts create.
        var exported = Directory.GetFiles(Path.Combine(Root, "src"), "*.cs", SearchOption.AllDirectories).Select(File.ReadAllText)
            .SelectMany(code => Regex.Matches(code, "Create(?:Gauge|Counter|Histogram)\\(\"(unlearnable_\\w+)\"").Select(m => m.Groups[1].Value)).ToHashSet();
        var read = alerts.Select(a => S(a["expr"]))
            .Append(S(Kind(monitoring, "ConfigMap").Single()["data"]!["unlearnable-dashboard.json"]))
            .Append(File.ReadAllText(Path.Combine(Root, "deploy", "kubernetes", "prometheus-adapter-rules.yaml")));
        var named = read.SelectMany(text => Regex.Matches(text, "unlearnable_[a-z_]+").Select(m => Regex.Replace(m.Value, "_(bucket|sum|count)$", ""))).ToHashSet();
        Assert.NotEmpty(named);
        Assert.All(named, metric => Assert.Contains(metric, exported));
        JsonNode.Parse(S(Kind(monitoring, "ConfigMap").Single()["data"]!["unlearnable-dashboard.json"]));   // the dashboard is JSON
    }

    [SkippableFact]
    public void TheKindOverlayRunsOnALaptopWithinTheSidecarsOwnMemoryCheck()
    {
        var all = Render("overlays/kind");
        CheckWorkloads(all, "overlays/kind");
        var deployments = Kind(all, "Deployment").ToDictionary(d => S(d["metadata"]!["name"]));
        Assert.Equal(["postgresql", "unlearnable-evaluation-host", "unlearnable-sidecar"], deployments.Keys.Order());
        Assert.All(deployments.Values.Where(d => S(d["metadata"]!["name"]).StartsWith("unlearnable")),
            d => Assert.EndsWith(":dev", S(d["spec"]!["template"]!["spec"]!["containers"]![0]!["image"])));   // built and loaded locally
        // The quick start's connection string names the in-cluster PostgreSQL by its Service.
        Assert.Contains(Kind(all, "Service"), svc => S(svc["metadata"]!["name"]) == "postgresql");
        Assert.Contains("Host=postgresql;", File.ReadAllText(Path.Combine(Root, "README.md")));
        Assert.Empty(Kind(all, "HorizontalPodAutoscaler"));   // no Prometheus adapter on a laptop

        // The sidecar's limits, as its start-up check adds them, fit the container's memory limit.
        var sidecar = deployments["unlearnable-sidecar"]["spec"]!["template"]!["spec"]!["containers"]![0]!;
        var env = Items(sidecar["env"]).Where(e => e["value"] is not null).ToDictionary(e => S(e["name"]).Replace("Sidecar__Limits__", ""), e => S(e["value"]));
        var limits = new LimitOptions { PostMemoryBytes = long.Parse(env["PostMemoryBytes"]), MaxImagePixels = long.Parse(env["MaxImagePixels"]) };
        long bounds = limits.MemoryBounds().Sum(b => b.Bytes), container = Quantity(S(sidecar["resources"]!["limits"]!["memory"]));
        Assert.True(bounds <= container, $"the sidecar's limits add up to {bounds:N0} bytes; its container has {container:N0}");
    }

    [SkippableFact]
    public void TheReadmesQuickStartNamesOnlyWhatExists()
    {
        var readme = File.ReadAllText(Path.Combine(Root, "README.md"));
        var start = readme.IndexOf("### Quick start on kind", StringComparison.Ordinal);
        Assert.True(start >= 0, "README has no kind quick start");
        var block = Regex.Match(readme[start..], "```sh\n(.*?)```", RegexOptions.Singleline).Groups[1].Value.Replace("\\\n", " ");
        var all = Render("overlays/kind");

        // The images it builds are the ones the overlay runs, from Dockerfiles that exist.
        var built = Regex.Matches(block, @"docker build --platform linux/amd64 -f (\S+) -t (\S+) \.").Select(m => (File: m.Groups[1].Value, Image: m.Groups[2].Value)).ToList();
        Assert.Equal(2, built.Count);
        Assert.All(built, b => Assert.True(File.Exists(Path.Combine(Root, b.File)), b.File));
        var images = Kind(all, "Deployment").Select(d => S(d["spec"]!["template"]!["spec"]!["containers"]![0]!["image"])).Where(i => i.Contains("unlearnable")).ToList();
        Assert.Equal(images.Order(), built.Select(b => b.Image).Order());
        Assert.Contains($"kind load docker-image {string.Join(' ', built.Select(b => b.Image))}", block);

        // The Secrets it makes have every key the manifests read.
        var made = block.Split('\n').Select(line => Regex.Match(line, @"create secret generic (\S+)(.*)")).Where(m => m.Success)
            .ToDictionary(m => m.Groups[1].Value, m => Regex.Matches(m.Groups[2].Value, @"--from-literal=([\w-]+)=").Select(k => k.Groups[1].Value).ToHashSet());
        var read = all.SelectMany(o => Regex.Matches(o.ToJsonString(), "\"secretKeyRef\":(\\{[^}]*\\})"))
            .Select(m => JsonNode.Parse(m.Groups[1].Value)!).Select(r => (S(r["name"]), S(r["key"]))).Distinct().ToList();
        Assert.NotEmpty(read);
        Assert.All(read, r => Assert.True(made.TryGetValue(r.Item1, out var keys) && keys.Contains(r.Item2), $"the quick start does not make {r.Item1}/{r.Item2}"));

        // What it applies, waits for and forwards exists; the client it runs takes the options it is given.
        Assert.Contains("kubectl apply -k deploy/kubernetes/overlays/kind", block);
        Assert.Contains(Kind(all, "Deployment"), d => block.Contains($"deployment/{S(d["metadata"]!["name"])} "));
        Assert.Contains(Kind(all, "Service"), svc => block.Contains($"service/{S(svc["metadata"]!["name"])} 5051:5051"));
        var project = Regex.Match(block, @"dotnet run --project (\S+) -- protect").Groups[1].Value;
        var program = File.ReadAllText(Path.Combine(Root, project, "Program.cs"));
        foreach (var option in Regex.Matches(block[block.IndexOf("dotnet run", StringComparison.Ordinal)..], @"--([a-z-]+) ").Select(m => m.Groups[1].Value).Where(o => o != "project"))
            Assert.Contains($"\"{option}\"", program);
    }

    /// <summary>A Kubernetes memory quantity (Mi, Gi) in bytes.</summary>
    static long Quantity(string value) => value.EndsWith("Gi") ? long.Parse(value[..^2]) << 30 : value.EndsWith("Mi") ? long.Parse(value[..^2]) << 20 : long.Parse(value);

    static JsonObject Yaml(string path)
    {
        var document = new DeserializerBuilder().Build().Deserialize<object>(File.ReadAllText(path));
        return JsonNode.Parse(new SerializerBuilder().JsonCompatible().Build().Serialize(document))!.AsObject();
    }

    [Fact]
    public void ComposeRunsOnX64DrainsInFullAndStartsInOrderWithSQLiteOrPostgreSqlOrGpus()
    {
        var folder = Path.Combine(Root, "deploy");
        var compose = Yaml(Path.Combine(folder, "compose.yaml"))["services"]!.AsObject();
        Assert.Equal(["evaluation-host", "sidecar"], compose.Select(p => p.Key).Order());
        foreach (var (name, service) in compose)
        {
            Assert.Equal("linux/amd64", S(service!["platform"]));   // libtorch's packages are x64 only
            Assert.NotNull(service["healthcheck"]);
        }
        // Docker's default 10 s before SIGKILL would cut the sidecar's drain (25 s, then 10 s for the host to stop).
        var sidecarGrace = S(compose["sidecar"]!["stop_grace_period"]);
        Assert.True(sidecarGrace.EndsWith('s') && int.Parse(sidecarGrace[..^1]) >= 35, $"the sidecar's stop_grace_period is '{sidecarGrace}'");
        Assert.Equal("service_healthy", S(compose["evaluation-host"]!["depends_on"]!["sidecar"]!["condition"]));

        // The PostgreSQL file adds a healthy database both hosts wait for and store their state in.
        var postgres = Yaml(Path.Combine(folder, "compose.postgres.yaml"))["services"]!.AsObject();
        Assert.NotNull(postgres["postgres"]!["healthcheck"]);
        foreach (var (host, setting) in new[] { ("sidecar", "Sidecar__Profiles__Store__Provider"), ("evaluation-host", "Evaluation__Store__Provider") })
        {
            Assert.Equal("PostgreSql", S(postgres[host]!["environment"]![setting]));
            Assert.Equal("service_healthy", S(postgres[host]!["depends_on"]!["postgres"]!["condition"]));
        }
        // The GPU file builds the CUDA images and gives each host a GPU and the CUDA device.
        var gpu = Yaml(Path.Combine(folder, "compose.gpu.yaml"))["services"]!.AsObject();
        Assert.Equal(["evaluation-host", "sidecar"], gpu.Select(p => p.Key).Order());
        Assert.All(gpu, p => Assert.Equal("cuda", S(p.Value!["build"]!["args"]!["TORCH"])));
        Assert.All(gpu, p => Assert.Contains("gpu", S(p.Value!["deploy"]!["resources"]!["reservations"]!["devices"]![0]!["capabilities"])));
    }

    [SkippableFact]
    public void TheSidecarFitsIntoABackendsPod()
    {
        var all = Render("examples/backend-with-sidecar");
        CheckWorkloads(all, "examples/backend-with-sidecar");
        var pod = Kind(all, "Deployment").Single()["spec"]!["template"]!["spec"]!;
        Assert.Equal(["backend"], Items(pod["containers"]).Select(c => S(c["name"])));
        // The sidecar is a native sidecar: started before the backend, stopped after it.
        var sidecar = Items(pod["initContainers"]).Single();
        Assert.Equal(("unlearnable-sidecar", "Always"), (S(sidecar["name"]), S(sidecar["restartPolicy"])));
        Assert.NotNull(sidecar["startupProbe"]);
        // The backend presents the key the sidecar accepts, from the same Secret.
        var key = Items(sidecar["env"]).Single(e => S(e["name"]) == "Sidecar__Auth__ApiKeys__0")["valueFrom"]!["secretKeyRef"]!;
        var presented = Items(Items(pod["containers"]).Single()["env"]).Single(e => S(e["name"]) == "UNLEARNABLE_API_KEY")["valueFrom"]!["secretKeyRef"]!;
        Assert.Equal((S(key["name"]), S(key["key"])), (S(presented["name"]), S(presented["key"])));
    }

    [SkippableFact]
    public void ACheckpointIsCopiedOutOfItsModelImageBeforeTheSidecarStarts()
    {
        const string example = "examples/checkpoint-from-image";
        var all = Render(example);
        CheckWorkloads(all, example);
        var pod = Kind(all, "Deployment").Single(d => S(d["metadata"]!["name"]) == "unlearnable-sidecar")["spec"]!["template"]!["spec"]!;
        var copier = Items(pod["initContainers"]).Single(c => S(c["name"]) == "checkpoint");
        var sidecar = Items(pod["containers"]).Single(c => S(c["name"]) == "sidecar");
        string checkpoint = S(Items(sidecar["env"]).Single(e => S(e["name"]) == "Sidecar__Model__Checkpoint")["value"]);

        // The copy writes the very file the sidecar is told to load, through a volume both mount (the sidecar read-only).
        var command = copier["command"]!.AsArray().Select(S).ToList();
        Assert.Equal(["cp", command[1], checkpoint], command);
        static string? VolumeAt(JsonObject container, string path) =>
            Items(container["volumeMounts"]).FirstOrDefault(m => path.StartsWith(S(m["mountPath"]).TrimEnd('/') + "/", StringComparison.Ordinal)) is { } m ? S(m["name"]) : null;
        string? volume = VolumeAt(copier, checkpoint);
        Assert.NotNull(volume);
        Assert.Equal(volume, VolumeAt(sidecar, checkpoint));
        Assert.Contains(Items(sidecar["volumeMounts"]), m => S(m["name"]) == volume && S(m["readOnly"]) == "true");
        Assert.Contains(Items(pod["volumes"]), v => S(v["name"]) == volume && v["emptyDir"]?["sizeLimit"] is not null);

        // It reads where the model image puts the file, and runs locked down like the hosts.
        var dockerfile = File.ReadAllText(Path.Combine(Root, "deploy", "kubernetes", example, "Dockerfile"));
        var copied = Regex.Match(dockerfile, @"(?m)^COPY \$\{CHECKPOINT\} (\S+)/$");
        Assert.True(copied.Success, "the model image's Dockerfile does not COPY ${CHECKPOINT} into a folder");
        Assert.Equal(copied.Groups[1].Value, Path.GetDirectoryName(command[1]));
        var security = copier["securityContext"]!;
        Assert.True(S(security["readOnlyRootFilesystem"]) == "true" && S(security["allowPrivilegeEscalation"]) == "false" && S(security["runAsNonRoot"]) == "true",
            "the copying init container is not locked down");
        Assert.Matches($@"(?m)^USER {S(security["runAsUser"])}$", dockerfile);
    }
}
