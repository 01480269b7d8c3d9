var app = Unlearnable.Sidecar.SidecarApp.Build(args);
app.Run();
