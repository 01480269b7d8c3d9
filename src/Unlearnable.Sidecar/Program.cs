if (Unlearnable.Hosting.HealthProbe.RunIfAsked(args) is int probed) return probed;   // a container health check, no host started
Unlearnable.Clip.Runtime.TorchRuntime.PrepareNativeEnvironment();   // before any torch call
if (Unlearnable.Sidecar.Model.ModelPreparation.RunIfAsked(args) is int prepared) return prepared;   // the image build, an init container
var app = Unlearnable.Sidecar.SidecarApp.Build(args);
app.Run();
return 0;
