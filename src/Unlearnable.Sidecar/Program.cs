Unlearnable.Clip.Runtime.TorchRuntime.PrepareNativeEnvironment();   // before any torch call
var app = Unlearnable.Sidecar.SidecarApp.Build(args);
app.Run();
