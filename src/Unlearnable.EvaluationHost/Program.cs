Unlearnable.Clip.Runtime.TorchRuntime.PrepareNativeEnvironment();   // before any torch call
var app = Unlearnable.EvaluationHost.EvaluationHostApp.Build(args);
app.Run();
