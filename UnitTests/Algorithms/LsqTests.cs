using Microsoft.ML;
using MLNetQuant.Algorithms;
using MLNetQuant.Configuration;
using MLNetQuant.Core;
using MLNetQuant.Training;
using MLNetQuant.UnitTests.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNetQuant.UnitTests.Algorithms;

/// <summary>LSQ: paper initialisation, learned steps, unsigned grid after ReLU, and latent weights that train.</summary>
[TestClass]
public sealed class LsqTests
{
    [TestMethod]
    public void WeightStep_StartsAtTwiceMeanAbsOverSqrtQp_PerChannel()
    {
        manual_seed(5);
        using var w = randn(3, 10);
        var quantizer = new LsqQuantizer(QuantType.Weight, QuantSpec.Int8PerChannelSymmetricWeights, w, CPU);
        using var q = quantizer.CurrentQParams()!;
        var expected = TestData.Values(w.abs().mean(new long[] { 1 }).mul(CachedScalars.Of(2 / Math.Sqrt(127))));
        var actual = q.ScaleValues();
        for (var c = 0; c < 3; c++) Assert.AreEqual(expected[c], actual[c], 1e-6);
        Assert.AreEqual(-128, q.Spec.Range.QMin, "full signed grid");
    }

    [TestMethod]
    public void NonNegativeActivation_UsesTheUnsignedGrid_SignedInputKeepsTheSignedOne()
    {
        manual_seed(6);
        var relu = new LsqQuantizer(QuantType.Input, QuantSpec.UInt8PerTensorAffineActivations, null, CPU);
        using var positive = rand(4, 8);
        relu.Quantize(positive, new QuantContext(true, false, 1)).Dispose();
        Assert.AreEqual(QuantDtype.UInt, relu.Spec.Dtype);
        Assert.AreEqual(255, relu.Spec.Range.QMax, "the whole [0, 255] grid, not half of [−128, 127]");
        using (var q = relu.CurrentQParams()!)
            Assert.AreEqual(positive.abs().mean().item<float>() * 2 / (float)Math.Sqrt(255), q.ScaleValues()[0], 1e-6);

        var signed = new LsqQuantizer(QuantType.Input, QuantSpec.UInt8PerTensorAffineActivations, null, CPU);
        using var mixed = randn(4, 8);
        signed.Quantize(mixed, new QuantContext(true, false, 1)).Dispose();
        Assert.AreEqual(QuantDtype.Int, signed.Spec.Dtype);
    }

    [TestMethod]
    public void Training_LearnsTheSteps_AndTheLatentWeights()
    {
        var ml = new MLContext(seed: 4);
        var model = TestData.SeededTinyCnn(4);
        var linearBefore = TestData.Values(((Linear)((Sequential)model)[5]).weight!);
        var options = new LsqOptions
        {
            Model = model, InputShape = TestData.InputShape, Device = QuantDevice.Cpu, Epochs = 2, LearningRate = 0.05,
            Config = { new QuantConfig { QuantTypes = { QuantType.Weight, QuantType.Input }, QuantBits = 4, OpTypes = { "Linear" } } },
        };
        var run = QuantizationRunner.Run(ml, options, TestData.Quadrants(ml, 512));
        var linearAfter = TestData.Values(((Linear)((Sequential)model)[5]).weight!);
        CollectionAssert.AreNotEqual(linearBefore, linearAfter, "latent weights train (NNI v2.5+ freezes them without BN folding)");

        var steps = run.Network.QuantizerParameters().ToArray();
        Assert.HasCount(2, steps, "one learned step for the weight, one for the input");
        foreach (var step in steps)
            Assert.IsTrue(step.grad is not null && step.grad.abs().sum().item<float>() > 0, "every step receives the LSQ gradient");
        Assert.IsGreaterThan(0.8, run.History[^1].TrainAccuracy);
    }
}
