if (Unlearnable.Hosting.HealthProbe.RunIfAsked(args) is int probed) return probed;   // a container health check, no host started
Unlearnable.Clip.Runtime.TorchRuntime.PrepareNativeEnvironment();   // before any torch call
var app = Unlearnable.Sidecar.SidecarApp.Build(args);
app.Run();
return 0;
