// Low-bit sweep: how accuracy falls with the bit width, per algorithm. Trains the reference CNN in float, fine-tunes it
// with QAT, LSQ (weights and inputs) and DoReFa (weights) at 8, 4 and 2 bits — first conv and last linear kept at 8
// bits (in float for DoReFa), as usual for low-bit nets — trains a BNN (1 bit, inner layers) from scratch, and writes low-bit-sweep.csv and
// low-bit-sweep.png (accuracy against bits).
//
//   dotnet run --project Samples/LowBitSweep -c Release                     # 20,000 rows: a few minutes on 2 cores
//   dotnet run --project Samples/LowBitSweep -c Release -- --train 60000 --test 10000 --epochs 2
using System.Globalization;
using Microsoft.ML;
using MLNetQuant;
using MLNetQuant.Configuration;
using MLNetQuant.Samples.Shared;
using MLNetQuant.Training;
using static TorchSharp.torch;

CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
int Arg(string name, int fallback) => SampleArguments.PositiveInt(args, name, fallback);
int trainRows, testRows, floatEpochs, epochs;
try
{
    (trainRows, testRows, floatEpochs, epochs) = (Arg("--train", 20_000), Arg("--test", 5_000), Arg("--float-epochs", 2), Arg("--epochs", 1));
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"{e.Message}\nusage: LowBitSweep [--train ROWS] [--test ROWS] [--float-epochs N] [--epochs N] [--out DIR]");
    return 2;
}
var output = Array.IndexOf(args, "--out") is var o and >= 0 && o + 1 < args.Length ? args[o + 1] : Environment.CurrentDirectory;
Directory.CreateDirectory(output);

var ml = new MLContext(seed: 0);
var (train, _, source) = FashionData.Load(ml, train: true, trainRows);
var (test, _, _) = FashionData.Load(ml, train: false, testRows);
var shape = new long[] { 1, 28, 28 };
Console.WriteLine($"Fashion-MNIST from {source}: {trainRows} training, {testRows} test rows.");
double Accuracy(QuantizationRun run) => 100 * QuantizationRunner.Evaluate(ml, run, test, new FloatTrainingOptions { InputShape = shape, BatchSize = 256 }).Accuracy;

var floatRun = QuantizationRunner.Run(ml, new FloatTrainingOptions
{
    ModelFactory = FashionNets.Cnn, InputShape = shape, Epochs = floatEpochs, LearningRate = 0.01,
}, train);
var floatAccuracy = Accuracy(floatRun);
var weights = Path.Combine(Path.GetTempPath(), $"lowbit-float-{Environment.ProcessId}.bin");
floatRun.Network.Model.save(weights);
nn.Module<Tensor, Tensor> Pretrained()
{
    var model = FashionNets.Cnn();
    model.load(weights);
    return model;
}
Console.WriteLine($"float: {floatAccuracy:F2} %");

// Inner layers at `bits`, first conv ("0") and last linear ("11") at 8 bits.
List<QuantConfig> Config(int bits, params QuantType[] types) => new()
{
    new QuantConfig { QuantTypes = types.ToList(), QuantBits = bits, OpTypes = { "Conv2d", "Linear" } },
    new QuantConfig { QuantTypes = types.ToList(), QuantBits = 8, OpNames = { "0", "11" } },
};
T FineTune<T>(T options, int bits) where T : TrainingQuantizationOptions
{
    options.Model = Pretrained();
    options.InputShape = shape;
    options.Epochs = epochs;
    options.LearningRate = 0.001;
    return options;
}

var results = new List<(string Algorithm, int Bits, double Accuracy)>();
foreach (var bits in new[] { 8, 4, 2 })
{
    results.Add(("QAT", bits, Accuracy(QuantizationRunner.Run(ml, FineTune(new QatOptions { Config = Config(bits, QuantType.Weight, QuantType.Input) }, bits), train))));
    results.Add(("LSQ", bits, Accuracy(QuantizationRunner.Run(ml, FineTune(new LsqOptions { Config = Config(bits, QuantType.Weight, QuantType.Input) }, bits), train))));
    // DoReFa maps every weight into [−1, 1]: the BNs after the convs absorb that, but the last linear's logits would
    // change scale, so DoReFa's usual recipe (the paper's) keeps the first and last layers in float.
    var dorefa = new List<QuantConfig>
    {
        new() { QuantTypes = { QuantType.Weight }, QuantBits = bits, OpTypes = { "Conv2d", "Linear" } },
        new() { OpNames = { "0", "11" }, Exclude = true },
    };
    results.Add(("DoReFa", bits, Accuracy(QuantizationRunner.Run(ml, FineTune(new DoReFaOptions { Config = dorefa }, bits), train))));
    foreach (var r in results.TakeLast(3)) Console.WriteLine($"{r.Algorithm,-7} W{bits}{(r.Algorithm == "DoReFa" ? "  " : $"A{bits}")}: {r.Accuracy:F2} %");
}
var bnn = QuantizationRunner.Run(ml, new BnnOptions
{
    ModelFactory = FashionNets.HardtanhCnnWithLinearBatchNorm, InputShape = shape, Epochs = floatEpochs + epochs,
    LearningRate = 0.001, Optimizer = QuantOptimizer.Adam,
    Config =
    {
        new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 1, OpNames = { "4", "9" } },
        new QuantConfig { QuantTypes = { QuantType.Output }, QuantBits = 1, OpNames = { "2", "6" } },
    },
}, train);
results.Add(("BNN", 1, Accuracy(bnn)));
Console.WriteLine($"BNN     W1A1: {results[^1].Accuracy:F2} % (from scratch, {floatEpochs + epochs} epochs)");
File.Delete(weights);

var csv = Path.Combine(output, "low-bit-sweep.csv");
File.WriteAllLines(csv, results.Select(r => $"{r.Algorithm},{r.Bits},{r.Accuracy:F2},{floatAccuracy:F2}")
    .Prepend("algorithm,bits,accuracy,float_accuracy"));

var plot = new ScottPlot.Plot();
foreach (var group in results.GroupBy(r => r.Algorithm))
{
    var points = group.OrderBy(r => r.Bits).ToArray();
    var series = plot.Add.Scatter(points.Select(p => (double)p.Bits).ToArray(), points.Select(p => p.Accuracy).ToArray());
    series.LegendText = group.Key;
    series.MarkerSize = 8;
}
var baseline = plot.Add.HorizontalLine(floatAccuracy);
baseline.LegendText = "float (before fine-tuning)";
baseline.LinePattern = ScottPlot.LinePattern.Dashed;
plot.Title($"Fashion-MNIST CNN: accuracy against bits ({trainRows} training rows)");
plot.XLabel("bits (weights; weights and inputs for QAT and LSQ)");
plot.YLabel("test accuracy %");
plot.ShowLegend(ScottPlot.Alignment.UpperLeft);
var png = Path.Combine(output, "low-bit-sweep.png");
plot.SavePng(png, 900, 560);
Console.WriteLine($"Wrote {csv} and {png}.");
return 0;
