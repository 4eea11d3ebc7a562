// MLNetQuant quick start (core preview): trains a small Fashion-MNIST classifier with TorchSharp, then simulates its
// int8 deployment with MLNetQuant's quantization core two ways — post-training calibration (histogram observers) and
// one epoch of quantization-aware training (straight-through fake quantization) — and prints the accuracies and the
// per-layer scales and zero-points. The ML.NET estimators (mlContext.Quantization()) build on this core.
//
//   dotnet run --project Samples/QuickStart -c Release                 # quick defaults, a few minutes on 2 cores
//   dotnet run --project Samples/QuickStart -c Release -- --full --epochs 3
using System.Diagnostics;
using MLNetQuant.Core;
using MLNetQuant.Core.Observers;
using MLNetQuant.Samples.QuickStart;
using MLNetQuant.Samples.Shared;
using TorchSharp;
using static TorchSharp.torch;

var options = QuickStartOptions.Parse(args);
if (options is null) return 2;

manual_seed(options.Seed);
torch.set_num_threads(Math.Max(1, Environment.ProcessorCount));
var device = cuda.is_available() ? CUDA : CPU;

var train = FashionMnist.Load(train: true, options.TrainRows);
var test = FashionMnist.Load(train: false, options.TestRows);
Console.WriteLine($"Fashion-MNIST from {train.Source}: {train.Labels.Length} training and {test.Labels.Length} test images; device {device.type}.");

using var trainX = Normalize(tensor(train.Images.SelectMany(r => r).ToArray(), new long[] { train.Labels.Length, 784 })).to(device);
using var trainY = tensor(train.Labels.Select(l => (long)l).ToArray()).to(device);
using var testX = Normalize(tensor(test.Images.SelectMany(r => r).ToArray(), new long[] { test.Labels.Length, 784 })).to(device);
using var testY = tensor(test.Labels.Select(l => (long)l).ToArray()).to(device);

using var model = new Mlp(device);
var clock = Stopwatch.StartNew();
for (var epoch = 1; epoch <= options.Epochs; epoch++)
{
    var loss = TrainEpoch(model, trainX, trainY, options, learningRate: 0.01);
    Console.WriteLine($"float epoch {epoch}/{options.Epochs}: loss {loss:F4}, test accuracy {Accuracy(model, testX, testY):P2} ({clock.Elapsed.TotalSeconds:F0} s)");
}
var floatAccuracy = Accuracy(model, testX, testY);

// Post-training: calibrate histogram observers on a few hundred training rows, then evaluate simulated int8.
model.ActivationObservers = new QuantObserver[]
{
    new HistogramObserver(QuantSpec.UInt8PerTensorAffineActivations),
    new HistogramObserver(QuantSpec.UInt8PerTensorAffineActivations),
};
using (no_grad())
{
    foreach (var batch in trainX.narrow(0, 0, Math.Min(512, train.Labels.Length)).split(128)) Calibrate(model, batch);
}
var ptqAccuracy = Accuracy(model, testX, testY);
PrintReport("post-training int8 (histogram calibration)", model);

// Quantization-aware training: one more epoch with fake-quantized weights and moving-average activation ranges,
// against a float control trained the same extra epoch from the same weights.
var floatState = model.Parameters.Select(p => p.detach().clone()).ToArray();
model.ActivationObservers = new QuantObserver[]
{
    new MovingAverageMinMaxObserver(QuantSpec.UInt8PerTensorAffineActivations),
    new MovingAverageMinMaxObserver(QuantSpec.UInt8PerTensorAffineActivations),
};
model.Observing = true;
TrainEpoch(model, trainX, trainY, options, learningRate: 0.002);
model.Observing = false;
var qatAccuracy = Accuracy(model, testX, testY);
PrintReport("quantization-aware training int8", model);

using (no_grad())
{
    foreach (var (p, saved) in model.Parameters.Zip(floatState)) p.copy_(saved);
}
model.ActivationObservers = null;
TrainEpoch(model, trainX, trainY, options, learningRate: 0.002);
var controlAccuracy = Accuracy(model, testX, testY);

Console.WriteLine();
Console.WriteLine("| model                                   | test accuracy |");
Console.WriteLine("|-----------------------------------------|---------------|");
Console.WriteLine($"| float                                   | {floatAccuracy,13:P2} |");
Console.WriteLine($"| int8 post-training (simulated)          | {ptqAccuracy,13:P2} |");
Console.WriteLine($"| float control, +1 epoch                 | {controlAccuracy,13:P2} |");
Console.WriteLine($"| int8 QAT, +1 epoch (simulated)          | {qatAccuracy,13:P2} |");
Console.WriteLine($"Done in {clock.Elapsed.TotalSeconds:F0} s.");
return 0;

static Tensor Normalize(Tensor pixels) => pixels.sub(0.2860f).div(0.3530f);

static double TrainEpoch(Mlp model, Tensor x, Tensor y, QuickStartOptions options, double learningRate)
{
    var optimizer = optim.SGD(model.Parameters,
        learningRate, momentum: 0.9);
    var order = randperm(x.shape[0], device: x.device);
    double total = 0;
    var batches = 0;
    for (long start = 0; start < x.shape[0]; start += options.BatchSize)
    {
        using var scope = NewDisposeScope();
        var index = order.narrow(0, start, Math.Min(options.BatchSize, x.shape[0] - start));
        optimizer.zero_grad();
        var loss = nn.functional.cross_entropy(model.Forward(x[index]), y[index]);
        loss.backward();
        optimizer.step();
        total += loss.item<float>();
        batches++;
    }
    return total / batches;
}

static void Calibrate(Mlp model, Tensor batch)
{
    model.Observing = true;
    using var scope = NewDisposeScope();
    model.Forward(batch);
    model.Observing = false;
}

static double Accuracy(Mlp model, Tensor x, Tensor y)
{
    using var noGrad = no_grad();
    long correct = 0;
    foreach (var (xb, yb) in x.split(1000).Zip(y.split(1000)))
    {
        using var scope = NewDisposeScope();
        correct += model.Forward(xb).argmax(1).eq(yb).sum().item<long>();
    }
    return (double)correct / x.shape[0];
}

static void PrintReport(string title, Mlp model)
{
    Console.WriteLine($"{title}:");
    foreach (var (name, qParams) in model.Report())
        using (qParams)
            Console.WriteLine($"  {name,-11} {qParams}");
}
