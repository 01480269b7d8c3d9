var app = Unlearnable.EvaluationHost.EvaluationHostApp.Build(args);
app.Run();
