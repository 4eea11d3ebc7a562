// MLNetQuant production loader: what a production app needs to run a model saved by MLNetQuant — Microsoft.ML,
// Microsoft.ML.OnnxTransformer and ONNX Runtime, nothing else (no TorchSharp, no MLNetQuant). It loads the .zip,
// builds a PredictionEngine and scores Fashion-MNIST test images.
//
//   dotnet run --project Samples/ProductionLoader -c Release -- fashion-int8.zip        # a .zip from QuickStart
//   ProductionLoader <model.zip> [--rows N]
//   ProductionLoader <model.zip> --features F.bin --scores S.bin --size N [--labels L.bin]
//       raw float32 rows in; float32 scores out and, for a classifier, each row's PredictedLabel key as uint32
//   ProductionLoader <model.zip> --texts T.txt --embeddings E.bin [--column Embedding]
//       a text pipeline (tokenizer + embedder): one text per line in; each row's float32 embedding out
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Transforms.Onnx;
using MLNetQuant.Samples.Shared;

if (args.Length < 1 || args[0].StartsWith("-", StringComparison.Ordinal))
{
    Console.Error.WriteLine("usage: ProductionLoader <model.zip> [--rows N] | <model.zip> --features F.bin --scores S.bin --size N");
    return 2;
}
string? Option(string name) => Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;
var zip = args[0];
if (!File.Exists(zip))
{
    Console.Error.WriteLine($"No model at {zip}: run the QuickStart sample first (it writes fashion-int8.zip).");
    return 1;
}

var ml = new MLContext();
// ONNX Runtime Extensions' operators in every session: a text pipeline's tokenizer step is one (harmless otherwise).
ml.SetOnnxSessionOption(new OnnxSessionOptions
{
    CreateSessionOptions = () =>
    {
        var options = new SessionOptions();
        options.RegisterOrtExtensions();
        return options;
    },
});
var model = ml.Model.Load(zip, out _);
string LoadedAssemblies() => string.Join(", ", AppDomain.CurrentDomain.GetAssemblies().Select(a => a.GetName().Name)
    .Where(n => n!.Contains("Torch", StringComparison.Ordinal) || n.Contains("MLNetQuant", StringComparison.Ordinal)));

if (Option("--texts") is { } textsPath && Option("--embeddings") is { } embeddingsPath)
{
    var column = Option("--column") ?? "Embedding";
    var texts = ml.Data.LoadFromEnumerable(File.ReadAllLines(textsPath).Select(t => new TextInput { Text = t }));
    using var embeddings = new BinaryWriter(File.Create(embeddingsPath));
    var count = 0;
    foreach (var embedding in model.Transform(texts).GetColumn<float[]>(column))
    {
        foreach (var value in embedding) embeddings.Write(value);
        count++;
    }
    Console.WriteLine($"embedded {count} texts; loaded {model.GetType().Name}; torch or mlnetquant assemblies loaded: [{LoadedAssemblies()}]");
    return 0;
}
var featureCount = int.Parse(Option("--size") ?? "784", CultureInfo.InvariantCulture);
var definition = SchemaDefinition.Create(typeof(Input));
definition[nameof(Input.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, featureCount);
// A PredictionEngine is not thread-safe: one per thread (or an ObjectPool / PredictionEnginePool in ASP.NET Core).
// Classifiers saved by MLNetQuant carry ML.NET's key-typed PredictedLabel (class index + 1); regressors Score only.
var outputSchema = model.GetOutputSchema(ml.Data.LoadFromEnumerable(Array.Empty<Input>(), definition).Schema);
var classifier = outputSchema.GetColumnOrNull(nameof(Output.PredictedLabel))?.Type is KeyDataViewType;
var outputDefinition = SchemaDefinition.Create(typeof(Output));
if (!classifier) outputDefinition.RemoveAll(c => c.MemberName == nameof(Output.PredictedLabel));
var engine = ml.Model.CreatePredictionEngine<Input, Output>(model, inputSchemaDefinition: definition, outputSchemaDefinition: outputDefinition);
var loaded = LoadedAssemblies();

if (Option("--features") is { } featuresPath && Option("--scores") is { } scoresPath)
{
    var bytes = File.ReadAllBytes(featuresPath);
    var values = new float[bytes.Length / 4];
    Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
    using var output = new BinaryWriter(File.Create(scoresPath));
    using var labels = Option("--labels") is { } labelsPath && classifier ? new BinaryWriter(File.Create(labelsPath)) : null;
    for (var row = 0; row < values.Length / featureCount; row++)
    {
        var prediction = engine.Predict(new Input { Features = values.AsSpan(row * featureCount, featureCount).ToArray() });
        foreach (var score in prediction.Score) output.Write(score);
        labels?.Write(prediction.PredictedLabel);
    }
    Console.WriteLine($"scored {values.Length / featureCount} rows; loaded {model.GetType().Name}; torch or mlnetquant assemblies loaded: [{loaded}]");
    return 0;
}

var rows = int.Parse(Option("--rows") ?? "1000", CultureInfo.InvariantCulture);
var test = FashionData.Load(ml, train: false, rows);
var correct = 0;
foreach (var row in ml.Data.CreateEnumerable<FashionRow>(test.Data, reuseRowObject: false))
{
    var prediction = engine.Predict(new Input { Features = row.Features });
    var predictedClass = classifier ? prediction.PredictedLabel - 1 : (uint)Array.IndexOf(prediction.Score, prediction.Score.Max());
    if (predictedClass == row.Label) correct++;
}
Console.WriteLine($"{zip}: {(double)correct / test.Rows:P2} accuracy on {test.Rows} Fashion-MNIST test images " +
    $"(PredictionEngine over {model.GetType().Name}, {(classifier ? "its PredictedLabel key" : "the arg-max of Score")}); " +
    $"torch or mlnetquant assemblies loaded: [{loaded}]");
return 0;

internal sealed class TextInput
{
    public string Text { get; set; } = "";
}

internal sealed class Input
{
    public float[] Features { get; set; } = Array.Empty<float>();
}

internal sealed class Output
{
    /// <summary>Class probabilities (the arg-max is the predicted class), or the regression output.</summary>
    public float[] Score { get; set; } = Array.Empty<float>();

    /// <summary>A classifier's predicted class as ML.NET's key: class index + 1 (0 would be "missing").</summary>
    public uint PredictedLabel { get; set; }
}
