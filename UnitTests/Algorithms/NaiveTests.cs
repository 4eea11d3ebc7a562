using Microsoft.ML;
using MLNetQuant.Algorithms;
using MLNetQuant.Configuration;
using MLNetQuant.Core;
using MLNetQuant.Training;
using MLNetQuant.UnitTests.Training;
using static TorchSharp.torch;

namespace MLNetQuant.UnitTests.Algorithms;

/// <summary>Naive: weight-only, rounding (not NNI v2's truncation), configurable bits and granularity, no training.</summary>
[TestClass]
public sealed class NaiveTests
{
    [TestMethod]
    public void Weights_AreRounded_NotTruncated()
    {
        // Scale 1/127: 0.0074 is 0.94 steps — rounding gives 1 step, truncation (NNI v2) would give 0.
        using var quantizer = new MinMaxWeightQuantizer(new QuantSpec(QuantDtype.Int, 8, QuantScheme.PerTensorSymmetric));
        using var w = tensor(new[] { 1f, 0.0074f, -0.0074f });
        using var q = quantizer.Quantize(w, new QuantContext(false, false, 1));
        var values = TestData.Values(q);
        Assert.AreEqual(1f / 127.5f, values[1], 1e-6, "scale absmax/127.5 (PyTorch's symmetric int8), one step");
        Assert.AreEqual(-1f / 127.5f, values[2], 1e-6);
    }

    [TestMethod]
    public void Run_QuantizesEveryWeightPerChannel_WithoutData_AndLeavesTheLatentWeightsAlone()
    {
        var ml = new MLContext(seed: 1);
        var model = TestData.SeededTinyCnn(1);
        var before = TestData.State(model);
        CollectionAssert.IsSubsetOf(new[] { "1.running_mean", "1.running_var", "1.num_batches_tracked" },
            before.Select(s => s.Name).ToArray(), "the BN buffers are part of the check");
        var run = QuantizationRunner.Run(ml, new NaiveOptions { Model = model, InputShape = TestData.InputShape, Device = QuantDevice.Cpu }, null);

        Assert.HasCount(2, run.Network.Layers, "the conv and the linear layer");
        Assert.IsEmpty(run.History, "Naive does not train");
        using var conv = run.Network.Layers[0].CurrentQParams(QuantType.Weight)!;
        Assert.AreEqual(4, conv.ScaleValues().Length, "one scale per output channel");
        Assert.AreEqual("1", run.Network.Layers[0].FoldedBatchNormName, "the BN is folded before rounding");
        TestData.AssertSameState(before, TestData.State(model), "latent weights and BN statistics untouched");
    }

    [TestMethod]
    public void FourBitPerTensor_UsesAtMostSixteenLevels()
    {
        var ml = new MLContext(seed: 1);
        manual_seed(2);
        var model = nn.Sequential(nn.Linear(64, 32));
        var run = QuantizationRunner.Run(ml, new NaiveOptions
        {
            Model = model, InputShape = new long[] { 64 }, Device = QuantDevice.Cpu,
            Config = { new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 4, OpTypes = { "Linear" }, QuantScheme = QuantScheme.PerTensorSymmetric } },
        }, null);
        var layer = run.Network.Layers.Single();
        var quantizer = layer.Quantizers[QuantType.Weight];
        using var q = quantizer.Quantize(((TorchSharp.Modules.Linear)model[0]).weight!, new QuantContext(false, false, 1));
        Assert.IsLessThanOrEqualTo(16, TestData.Values(q).Distinct().Count());
        Assert.AreEqual(4, layer.SpecOf(QuantType.Weight).Bits);
    }

    [TestMethod]
    public void ActivationQuantTypes_AreRejected_NamingTheSubConfig()
    {
        var e = Assert.ThrowsExactly<QuantConfigException>(() => QuantizationRunner.Run(new MLContext(1), new NaiveOptions
        {
            Model = TestData.SeededTinyCnn(1), InputShape = TestData.InputShape,
            Config = { new QuantConfig { QuantTypes = { QuantType.Input }, QuantBits = 8, OpTypes = { "Conv2d" } } },
        }, null));
        StringAssert.Contains(e.Message, "config[0].quant_types");
    }
}
