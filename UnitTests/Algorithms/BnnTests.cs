using Microsoft.ML;
using MLNetQuant.Algorithms;
using MLNetQuant.Configuration;
using MLNetQuant.Core;
using MLNetQuant.Training;
using MLNetQuant.UnitTests.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNetQuant.UnitTests.Algorithms;

/// <summary>BNN: sign with 0 → +1, straight-through weights, output gradient masked where |x| > 1, latent weights
/// clipped after every optimizer step.</summary>
[TestClass]
public sealed class BnnTests
{
    private static readonly QuantSpec OneBit = new(QuantDtype.Int, 1, QuantScheme.PerTensorSymmetric);

    [TestMethod]
    public void Weights_AreSigns_ZeroMapsToPlusOne_GradientPassesStraightThrough()
    {
        var quantizer = new BinaryWeightQuantizer(OneBit, clipLatentWeights: true);
        using var w = tensor(new[] { -0.3f, 0f, 0.2f, 2f }).requires_grad_(true);
        using var b = quantizer.Quantize(w, new QuantContext(true, false, 1));
        CollectionAssert.AreEqual(new[] { -1f, 1f, 1f, 1f }, TestData.Values(b));
        b.mul(tensor(new[] { 1f, 2f, 3f, 4f })).sum().backward();
        CollectionAssert.AreEqual(new[] { 1f, 2f, 3f, 4f }, TestData.Values(w.grad!));
    }

    [TestMethod]
    public void Outputs_AreSigns_GradientZeroWhereMagnitudeExceedsOne()
    {
        var quantizer = new BinaryActivationQuantizer(QuantType.Output, OneBit);
        using var y = tensor(new[] { -1.5f, -1f, 0f, 0.5f, 1.2f }).requires_grad_(true);
        using var b = quantizer.Quantize(y, new QuantContext(true, false, 1));
        CollectionAssert.AreEqual(new[] { -1f, -1f, 1f, 1f, 1f }, TestData.Values(b));
        b.sum().backward();
        CollectionAssert.AreEqual(new[] { 0f, 1f, 1f, 1f, 0f }, TestData.Values(y.grad!));
    }

    [TestMethod]
    public void LatentWeights_AreClippedInPlace_AfterEveryOptimizerStep()
    {
        var quantizer = new BinaryWeightQuantizer(OneBit, clipLatentWeights: true);
        using var latent = new Parameter(tensor(new[] { 2f, -3f, 0.5f }));
        quantizer.AfterOptimizerStep(latent);
        CollectionAssert.AreEqual(new[] { 1f, -1f, 0.5f }, TestData.Values(latent));
    }

    [TestMethod]
    public void Training_KeepsBinarizedLatentWeightsInUnitRange_AndLearns()
    {
        var ml = new MLContext(seed: 2);
        var run = QuantizationRunner.Run(ml, new BnnOptions
        {
            ModelFactory = TestData.TinyHardtanhNet, InputShape = TestData.InputShape, Device = QuantDevice.Cpu,
            Optimizer = QuantOptimizer.Adam, LearningRate = 0.05, Epochs = 3,
            Config =
            {
                new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 1, OpNames = { "5" } },
                new QuantConfig { QuantTypes = { QuantType.Output }, QuantBits = 1, OpNames = { "2" } },
            },
        }, TestData.Quadrants(ml, 512));
        var binarized = (Linear)((Sequential)run.Network.Model)[5];
        Assert.IsTrue(binarized.weight!.abs().max().item<float>() <= 1f, "clipped to [−1, 1]");
        Assert.IsNull(run.Network.Layers.Single(l => l.Name == "5").FoldedBatchNormName);
        Assert.IsGreaterThan(0.6, run.History[^1].TrainAccuracy, "a binarized net still learns the quadrant task");
    }
}
