// Post-training quantization of a model nobody here trained: ResNet-18 (ImageNet) from ML.NET's
// Microsoft.ML.DnnImageFeaturizer.ResNet18 package, exported by CNTK at opset 8 with a fixed batch of 1 and 22
// BatchNormalization nodes. MLNetQuant folds the BNs, lifts the opset, makes the batch symbolic, calibrates in ONNX
// Runtime and prints the per-layer error report, the size and the speed against the float model.
//
//   dotnet run --project Samples/PretrainedOnnxPtq -c Release                    # 200 calibration images
//   dotnet run --project Samples/PretrainedOnnxPtq -c Release -- --rows 500
using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.OnnxRuntime;
using MLNetQuant;
using MLNetQuant.OnnxPtq;
using MLNetQuant.Samples.Shared;
using MLNetQuant.Training;

var rows = Array.IndexOf(args, "--rows") is var i and >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var r) && r > 0
    ? r : Array.IndexOf(args, "--rows") >= 0 ? -1 : 200;
if (rows < 0)
{
    Console.Error.WriteLine("usage: PretrainedOnnxPtq [--rows N]");
    return 2;
}
var resnet = ResNetTiles.ModelPath;
var meanImage = ResNetTiles.MeanImage();

// Calibration images: Fashion-MNIST scaled ×8 to 224×224, grey copied to three channels, minus ImageNet's mean image
// (what the package's preprocessing model subtracts). Streamed: 600 KB a row, never all in memory.
var ml = new MLContext(seed: 0);
ml.Log += (_, e) => { if (e.Message.Contains("quantization error", StringComparison.Ordinal)) Console.WriteLine($"  log: {e.Message}"); };
var calibration = ml.Data.LoadFromEnumerable(ResNetTiles.Load(train: true, rows, meanImage));
var clock = Stopwatch.StartNew();
using var int8 = ml.Quantization().Observer(new OnnxQuantizationOptions
{
    ModelPath = resnet, Calibration = CalibrationMethod.Percentile, Percentile = 99.999, CalibrationRows = rows, BatchSize = 16,
}).Fit(calibration);
Console.WriteLine($"Calibrated ResNet-18 on {rows} images in {clock.Elapsed.TotalSeconds:F0} s.");

Console.WriteLine("Per-layer error (SQNR of each quantized node's input against the float model), worst first:");
foreach (var error in int8.Report.LayerErrors!.Take(8)) Console.WriteLine($"  {error.Node,-32} {error.OpType,-5} {error.SqnrDb,6:F1} dB");

var floatModel = OnnxModelPreparation.Prepare(File.ReadAllBytes(resnet));
var int8Model = int8.GetOnnxBytes();
using var options = new SessionOptions { IntraOpNumThreads = Math.Min(Environment.ProcessorCount, 2) };
using var floatSession = new InferenceSession(floatModel, options);
using var int8Session = new InferenceSession(int8Model, options);
var image = ResNetTiles.Load(train: false, 1, meanImage).Single().Features;
double Time(InferenceSession session, string input, long[] shape, string output)
{
    using var value = OrtValue.CreateTensorValueFromMemory(image, shape);
    using var runOptions = new RunOptions(); // kept alive across the native call (a temporary could be finalized during it)
    session.Run(runOptions, new[] { input }, new[] { value }, new[] { output }).Dispose();
    var watch = Stopwatch.StartNew();
    for (var k = 0; k < 10; k++) session.Run(runOptions, new[] { input }, new[] { value }, new[] { output }).Dispose();
    return watch.Elapsed.TotalMilliseconds / 10;
}
var floatMs = Time(floatSession, floatSession.InputMetadata.Keys.Single(), new long[] { 1, 3, 224, 224 }, floatSession.OutputMetadata.Keys.First());
var int8Ms = Time(int8Session, "Features", new long[] { 1, 3, 224, 224 }, "Score"); // the QDQ model keeps the float model's input shape
Console.WriteLine($"Size: {int8Model.Length / 1048576.0:F1} MiB int8 vs {new FileInfo(resnet).Length / 1048576.0:F1} MiB float " +
    $"({(double)int8Model.Length / new FileInfo(resnet).Length:P1}).");
Console.WriteLine($"ONNX Runtime, one image: float {floatMs:F1} ms, int8 {int8Ms:F1} ms ({floatMs / int8Ms:F2}× faster).");
var zip = Path.Combine(AppContext.BaseDirectory, "resnet18-int8.zip");
ml.Model.Save(int8, calibration.Schema, zip);
Console.WriteLine($"Saved {zip} (an ordinary ML.NET model: Microsoft.ML + OnnxTransformer + ONNX Runtime load it).");
return 0;
