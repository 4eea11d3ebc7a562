using Microsoft.ML;
using MLNetQuant.Configuration;
using MLNetQuant.Samples.Shared;
using MLNetQuant.Training;
using static TorchSharp.torch;

namespace MLNetQuant.UnitTests.Algorithms;

/// <summary>All six algorithms train or calibrate the benchmark's reference CNN from C# with the typed config, on a
/// small Fashion-MNIST slice (the full-data numbers are the benchmark program's job).</summary>
[TestClass]
public sealed class ReferenceNetTests
{
    private static readonly long[] Shape = { 1, 28, 28 };

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void SixAlgorithms_QuantizeTheReferenceCnn()
    {
        var ml = new MLContext(seed: 1);
        var (train, _, _) = FashionData.Load(ml, train: true, 2000);
        var (test, _, _) = FashionData.Load(ml, train: false, 500);
        T Train<T>(T o, int epochs, double lr) where T : TrainingQuantizationOptions
        {
            o.InputShape = Shape;
            o.Epochs = epochs;
            o.LearningRate = lr;
            o.Device = QuantDevice.Cpu;
            return o;
        }
        double Accuracy(QuantizationRun run)
        {
            var accuracy = QuantizationRunner.Evaluate(ml, run, test, new FloatTrainingOptions { InputShape = Shape }).Accuracy;
            TestContext.WriteLine($"{run.Network.AlgorithmName}: {accuracy:P1}");
            return accuracy;
        }

        var floatRun = QuantizationRunner.Run(ml, Train(new FloatTrainingOptions { ModelFactory = FashionNets.Cnn }, 2, 0.01), train);
        var floatAccuracy = Accuracy(floatRun);
        Assert.IsGreaterThan(0.65, floatAccuracy, "the float reference net learns");
        var weights = Path.GetTempFileName();
        try
        {
            floatRun.Network.Model.save(weights);
            nn.Module<Tensor, Tensor> Trained() { var m = FashionNets.Cnn(); m.load(weights); return m; }
            var w8a8 = new List<QuantConfig> { new() { QuantTypes = { QuantType.Weight, QuantType.Input }, QuantBits = 8, OpTypes = { "Conv2d", "Linear" } } };
            var w4a4 = new List<QuantConfig> { new() { QuantTypes = { QuantType.Weight, QuantType.Input }, QuantBits = 4, OpTypes = { "Conv2d", "Linear" } } };

            var observer = QuantizationRunner.Run(ml, new ObserverOptions { Model = Trained(), InputShape = Shape, Device = QuantDevice.Cpu, Config = w8a8, CalibrationRows = 500 }, train);
            Assert.IsGreaterThan(floatAccuracy - 0.02, Accuracy(observer), "Observer W8A8");
            var naive = QuantizationRunner.Run(ml, new NaiveOptions { Model = Trained(), InputShape = Shape, Device = QuantDevice.Cpu }, null);
            Assert.IsGreaterThan(floatAccuracy - 0.02, Accuracy(naive), "Naive W8");
            var qat = QuantizationRunner.Run(ml, Train(new QatOptions { Model = Trained(), Config = w8a8 }, 1, 0.001), train);
            Assert.IsGreaterThan(floatAccuracy - 0.02, Accuracy(qat), "QAT W8A8");
            Assert.HasCount(4, qat.Network.Layers);
            var lsq = QuantizationRunner.Run(ml, Train(new LsqOptions { Model = Trained(), Config = w4a4 }, 1, 0.001), train);
            Assert.IsGreaterThan(floatAccuracy - 0.1, Accuracy(lsq), "LSQ W4A4");
            var dorefa = QuantizationRunner.Run(ml, Train(new DoReFaOptions
            {
                Model = Trained(), Config = { new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 4, OpTypes = { "Conv2d", "Linear" } } },
            }, 1, 0.001), train);
            // DoReFa maps every weight to [−1, 1], changing each layer's scale: one short epoch on a 2,000-row slice
            // only partly re-adapts the pretrained net (the full-data benchmark gives it two epochs of 60,000 rows).
            Assert.IsGreaterThan(0.5, Accuracy(dorefa), "DoReFa W4");
            var bnn = QuantizationRunner.Run(ml, Train(new BnnOptions
            {
                // With a BatchNorm1d after the binarized Linear, as binarized nets have (the benchmark's 90 % row): without
                // it, this 2-epoch run from scratch on 2,000 rows sits at chance-adjacent 49–56 % depending on the kernels.
                ModelFactory = FashionNets.HardtanhCnnWithLinearBatchNorm, Optimizer = QuantOptimizer.Adam,
                Config =
                {
                    new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 1, OpNames = { "4", "9" } },
                    new QuantConfig { QuantTypes = { QuantType.Output }, QuantBits = 1, OpNames = { "2", "6" } },
                },
            }, 2, 0.001), train);
            Assert.IsGreaterThan(0.7, Accuracy(bnn), "BNN W1A1 inner layers, from scratch (80.2 % on this machine kind)");
        }
        finally
        {
            File.Delete(weights);
        }
    }
}
