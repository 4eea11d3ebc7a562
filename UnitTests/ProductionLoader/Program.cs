// Loads an MLNetQuant model .zip with plain ML.NET and scores rows with a PredictionEngine.
//   ProductionLoader <model.zip> <features.bin> <scores.bin> <featureCount>
// features.bin: rows of little-endian float32; scores.bin receives each row's Score vector the same way.
using Microsoft.ML;
using Microsoft.ML.Data;

if (args.Length != 4)
{
    Console.Error.WriteLine("usage: ProductionLoader <model.zip> <features.bin> <scores.bin> <featureCount>");
    return 2;
}
var featureCount = int.Parse(args[3], System.Globalization.CultureInfo.InvariantCulture);
var ml = new MLContext();
var model = ml.Model.Load(args[0], out var inputSchema);
var definition = SchemaDefinition.Create(typeof(Input));
definition[nameof(Input.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, featureCount);
var engine = ml.Model.CreatePredictionEngine<Input, Output>(model, inputSchemaDefinition: definition);

var bytes = File.ReadAllBytes(args[1]);
var values = new float[bytes.Length / 4];
Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
using var output = new BinaryWriter(File.Create(args[2]));
for (var row = 0; row < values.Length / featureCount; row++)
{
    var prediction = engine.Predict(new Input { Features = values.AsSpan(row * featureCount, featureCount).ToArray() });
    foreach (var score in prediction.Score) output.Write(score);
}
Console.WriteLine($"scored {values.Length / featureCount} rows; loaded {model.GetType().Name}; input schema {inputSchema?.Count ?? 0} columns; " +
    $"torch or mlnetquant assemblies loaded: [{string.Join(", ", AppDomain.CurrentDomain.GetAssemblies().Select(a => a.GetName().Name).Where(n => n!.Contains("Torch") || n.Contains("MLNetQuant")))}]");
return 0;

internal sealed class Input
{
    public float[] Features { get; set; } = Array.Empty<float>();
}

internal sealed class Output
{
    public float[] Score { get; set; } = Array.Empty<float>();
}
