using MLNetQuant.Core;
using Microsoft.ML;
using MLNetQuant.Configuration;
using MLNetQuant.Modeling;
using MLNetQuant.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNetQuant.UnitTests.Training;

/// <summary>Conv/linear→BatchNorm pairs: found by walking, folded (BN gone from the evaluated graph), statistics kept
/// by the real BN during training; residual blocks walk the same way.</summary>
[TestClass]
public sealed class BatchNormFoldingTests
{
    private static NaiveOptions SixteenBit(nn.Module<Tensor, Tensor> model, long[] inputShape) => new()
    {
        Model = model, InputShape = inputShape, Device = QuantDevice.Cpu,
        Config = { new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 16, OpTypes = { "default" } } },
    };

    private static void RandomiseStatistics(BatchNorm bn)
    {
        using var _ = no_grad();
        bn.running_mean!.copy_(randn(bn.num_features));
        bn.running_var!.copy_(rand(bn.num_features).add(CachedScalars.Of(0.5), CachedScalars.One));
        bn.weight!.copy_(randn(bn.num_features));
        bn.bias!.copy_(randn(bn.num_features));
    }

    [TestMethod]
    public void FoldedNetwork_InEvaluation_MatchesTheFloatModelWithItsBatchNorm()
    {
        var model = TestData.SeededTinyCnn(11);
        RandomiseStatistics((BatchNorm)((Sequential)model)[1]);
        var run = QuantizationRunner.Run(new MLContext(1), SixteenBit(model, TestData.InputShape), null);
        Assert.AreEqual("1", run.Network.Layers[0].FoldedBatchNormName);

        using var x = randn(16, 1, 8, 8);
        model.eval();
        using var expected = model.call(x);
        using var actual = run.Network.call(x);
        Assert.IsTrue(actual.allclose(expected, rtol: 1e-3, atol: 1e-3),
            $"max |Δ| {(actual - expected).abs().max().item<float>()}: folded conv == conv followed by BN");
    }

    [TestMethod]
    public void Qat_TrainingMode_UpdatesTheBatchNormStatistics_WhichTheFoldUses()
    {
        var ml = new MLContext(seed: 3);
        var model = TestData.SeededTinyCnn(3);
        var bn = (BatchNorm)((Sequential)model)[1];
        var meanBefore = TestData.Values(bn.running_mean!);
        var run = QuantizationRunner.Run(ml, new QatOptions
        {
            Model = model, InputShape = TestData.InputShape, Device = QuantDevice.Cpu, Epochs = 2, LearningRate = 0.01,
        }, TestData.Quadrants(ml, 1024));
        Assert.AreEqual("1", run.Network.Layers[0].FoldedBatchNormName);
        CollectionAssert.AreNotEqual(meanBefore, TestData.Values(bn.running_mean!), "batch statistics reach the running ones");
        Assert.AreEqual(32L, bn.num_batches_tracked!.item<long>(), "BN ran once per step (2 × 1024 rows / 64), not twice");
        Assert.IsGreaterThan(0.8, run.History[^1].TrainAccuracy);
    }

    [TestMethod]
    public void ResidualBlocks_AreWalked_AndTheirInnerPairsFolded()
    {
        manual_seed(12);
        var branch = nn.Sequential(nn.Conv2d(4, 4, 3, padding: 1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3, padding: 1), nn.BatchNorm2d(4));
        var model = nn.Sequential(nn.Conv2d(1, 4, 3, padding: 1), new ResidualBlock(branch), nn.ReLU(), nn.Flatten(), nn.Linear(256, 4));
        RandomiseStatistics((BatchNorm)branch[1]);
        RandomiseStatistics((BatchNorm)branch[4]);
        var run = QuantizationRunner.Run(new MLContext(1), SixteenBit(model, TestData.InputShape), null);
        CollectionAssert.AreEqual(new[] { "0", "1.branch.0", "1.branch.3", "4" }, run.Network.Layers.Select(l => l.Name).ToArray());
        Assert.AreEqual("1.branch.1", run.Network.Layers[1].FoldedBatchNormName);

        using var x = randn(8, 1, 8, 8);
        model.eval();
        using var expected = model.call(x);
        using var actual = run.Network.call(x);
        Assert.IsTrue(actual.allclose(expected, rtol: 1e-3, atol: 1e-3), $"max |Δ| {(actual - expected).abs().max().item<float>()}");
    }
}
