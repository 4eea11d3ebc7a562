// Model Builder–style sample: ModelInput/ModelOutput classes, ModelBuilder.TrainModel (LoadFromEnumerable →
// transforms → Quantization().Qat(...) → MLModel.zip) and ConsumeModel.Predict with a cached PredictionEngine.
//
//   dotnet run --project Samples/ModelBuilderStyle -c Release                 # 10,000 rows, 2 epochs
//   dotnet run --project Samples/ModelBuilderStyle -c Release -- --train 60000 --epochs 3
using System.Globalization;
using MLNetQuant.Samples.Shared;
using MLNetQuant.Samples.ModelBuilderStyle;

int Arg(string name, int fallback) => SampleArguments.PositiveInt(args, name, fallback);

int trainRows, testRows, epochs;
try
{
    (trainRows, testRows, epochs) = (Arg("--train", 10_000), Arg("--test", 2_000), Arg("--epochs", 2));
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"{e.Message}\nusage: ModelBuilderStyle [--train ROWS] [--test ROWS] [--epochs N]");
    return 2;
}

ConsumeModel.ModelPath = Path.Combine(AppContext.BaseDirectory, "MLModel.zip");
Console.WriteLine($"Training (QAT int8, {trainRows} rows, {epochs} epochs)…");
var metrics = ModelBuilder.TrainModel(ConsumeModel.ModelPath, trainRows, testRows, epochs);
Console.WriteLine($"Saved {ConsumeModel.ModelPath}; test accuracy {metrics.MicroAccuracy:P2} on {testRows} rows " +
    $"(macro {metrics.MacroAccuracy:P2}, log-loss {metrics.LogLoss:F3}).");
Console.WriteLine($"Classes, in Score's order: {string.Join(", ", ConsumeModel.ClassNames)}");

var sample = ModelBuilder.Load(train: false, 5).ToArray();
foreach (var input in sample)
{
    var output = ConsumeModel.Predict(input);
    Console.WriteLine($"Actual: {input.Label,-12} Predicted: {output.PredictedLabel,-12} ({output.Score.Max():P1})");
}
return 0;
