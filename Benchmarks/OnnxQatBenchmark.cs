using Microsoft.ML;
using MLNetQuant.Configuration;
using MLNetQuant.Training;

namespace MLNetQuant.Benchmarks;

/// <summary>Fine-tuning an ONNX file (issue 12's acceptance): ../shared/models/fashion_cnn_fp32.onnx, a PyTorch export,
/// through <c>OnnxModelPath</c> — a float control (+1 epoch), QAT W8A8 (+1 epoch, target ≥ control − 0.2 pt) and LSQ
/// W4A4 (+1 epoch, target ≥ control − 1.0 pt), with the fine-tuning recipe of the TorchSharp path (SGD lr 0.001,
/// momentum 0.9, batch 64), on the full data.</summary>
internal static class OnnxQatBenchmark
{
    public static void Run(MLContext ml, IDataView train, IDataView test, string output, string command)
    {
        var path = FashionOnnxPtqBenchmark.Find("fashion_cnn_fp32.onnx");
        T Options<T>(T options) where T : TrainingQuantizationOptions
        {
            options.OnnxModelPath = path;
            options.Epochs = 1;
            options.LearningRate = 0.001;
            options.Momentum = 0.9;
            options.BatchSize = 64;
            options.Device = QuantDevice.Cpu;
            options.Progress = new ConsoleProgress();
            options.LogEverySteps = 300;
            return options;
        }
        (double Accuracy, double Seconds) Fit(TrainingQuantizationOptions options)
        {
            var run = QuantizationRunner.Run(ml, options, train);
            var accuracy = 100 * QuantizationRunner.Evaluate(ml, run, test, new FloatTrainingOptions { InputShape = options.InputShape, BatchSize = 256 }).Accuracy;
            return (accuracy, run.History.Average(h => h.Seconds));
        }
        var w4a4 = new List<QuantConfig> { new() { QuantTypes = { QuantType.Weight, QuantType.Input }, QuantBits = 4, OpTypes = { "Conv", "Gemm" } } }; // the imported graph's ONNX op types
        Console.WriteLine("-- ONNX file: float control +1 epoch");
        var (control, controlSeconds) = Fit(Options(new FloatTrainingOptions()));
        Write(output, new BenchmarkResult("onnxfile-float-control", "Float", "32", Math.Round(control, 2), "itself", Math.Round(control, 2), Math.Round(control, 2),
            true, Math.Round(controlSeconds, 1), 1, command, "fashion_cnn_fp32.onnx (PyTorch export) fine-tuned through OnnxModelPath"));
        Console.WriteLine("-- ONNX file: QAT W8A8 +1 epoch");
        var (qat, qatSeconds) = Fit(Options(new QatOptions()));
        Write(output, new BenchmarkResult("onnxfile-qat-w8a8", "QAT", "W8A8", Math.Round(qat, 2), "onnx float control", Math.Round(control, 2),
            Math.Round(control - 0.2, 2), qat >= control - 0.2 - 1e-9, Math.Round(qatSeconds, 1), 1, command, "fashion_cnn_fp32.onnx through OnnxModelPath"));
        Console.WriteLine("-- ONNX file: LSQ W4A4 +1 epoch");
        var (lsq, lsqSeconds) = Fit(Options(new LsqOptions { Config = w4a4 }));
        Write(output, new BenchmarkResult("onnxfile-lsq-w4a4", "LSQ", "W4A4", Math.Round(lsq, 2), "onnx float control", Math.Round(control, 2),
            Math.Round(control - 1.0, 2), lsq >= control - 1.0 - 1e-9, Math.Round(lsqSeconds, 1), 1, command, "fashion_cnn_fp32.onnx through OnnxModelPath"));
    }

    private static void Write(string output, BenchmarkResult result)
    {
        ResultFile.Write(output, result.Name, result);
        Console.WriteLine($"==> {result.Name}: {result.Accuracy:F2} % vs {result.Baseline} {result.BaselineAccuracy:F2} % (target >= {result.Target:F2}) " +
            $"{(result.Met ? "met" : "MISSED")}; {result.SecondsPerEpoch:F1} s/epoch");
    }
}
