using MLNetQuant.Configuration;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNetQuant.UnitTests.Configuration;

/// <summary>NNI's config_list semantics, typed: selection, last-match-wins, exclude, defaults, up-front validation.</summary>
[TestClass]
public sealed class QuantConfigResolverTests
{
    private static nn.Module Net() => nn.Sequential(
        ("conv1", nn.Conv2d(1, 4, 3)), ("bn1", nn.BatchNorm2d(4)), ("relu1", nn.ReLU()),
        ("features", nn.Sequential(("0", nn.Conv2d(4, 4, 3)), ("1", nn.ReLU6()))),
        ("flatten", nn.Flatten()), ("fc", nn.Linear(16, 10)));

    [TestMethod]
    public void DefaultOpTypes_SelectTheWeightedLayers_WithOnnxRuntimeFriendlyDefaults()
    {
        var plans = QuantConfigResolver.Resolve(Net(), new[]
        {
            new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 8, OpTypes = { "default" } },
        }, QuantAlgorithmRules.Qat);
        CollectionAssert.AreEqual(new[] { "conv1", "features.0", "fc" }, plans.Select(p => p.Name).ToArray());
        var weight = plans[0].Specs[QuantType.Weight];
        Assert.AreEqual(QuantScheme.PerChannelSymmetric, weight.Scheme);
        Assert.AreEqual(QuantDtype.Int, weight.Dtype);
        Assert.AreEqual(0, weight.ChannelAxis);
    }

    [TestMethod]
    public void LastMatchingSubConfigWins_Wholesale()
    {
        var plans = QuantConfigResolver.Resolve(Net(), new[]
        {
            new QuantConfig { QuantTypes = { QuantType.Weight, QuantType.Input }, QuantBits = 8, OpTypes = { "Conv2d", "Linear" } },
            new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 4, OpNames = { "fc" } },
        }, QuantAlgorithmRules.Qat);
        var fc = plans.Single(p => p.Name == "fc");
        Assert.AreEqual(1, fc.ConfigIndex);
        Assert.AreEqual(4, fc.Specs[QuantType.Weight].Bits);
        Assert.IsFalse(fc.Specs.ContainsKey(QuantType.Input), "keys are not merged from the earlier sub-config");
        var conv = plans.Single(p => p.Name == "conv1");
        Assert.AreEqual(QuantScheme.PerTensorAffine, conv.Specs[QuantType.Input].Scheme);
        Assert.AreEqual(QuantDtype.UInt, conv.Specs[QuantType.Input].Dtype);
    }

    [TestMethod]
    public void Exclude_HonoursItsValue()
    {
        var configs = new[]
        {
            new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 8, OpTypes = { "default" } },
            new QuantConfig { OpNames = { "conv1" }, Exclude = true },
            new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 8, OpNames = { "fc" }, Exclude = false },
        };
        var plans = QuantConfigResolver.Resolve(Net(), configs, QuantAlgorithmRules.Qat);
        CollectionAssert.AreEqual(new[] { "features.0", "fc" }, plans.Select(p => p.Name).ToArray());
    }

    [TestMethod]
    public void PerTypeBitsSchemesAndDtypes_Apply()
    {
        var plans = QuantConfigResolver.Resolve(Net(), new[]
        {
            new QuantConfig
            {
                QuantTypes = { QuantType.Weight, QuantType.Output }, OpNames = { "fc" },
                QuantBitsByType = { [QuantType.Weight] = 4, [QuantType.Output] = 8 },
                QuantSchemeByType = { [QuantType.Output] = QuantScheme.PerTensorSymmetric },
                QuantDtype = QuantDtype.Int,
            },
        }, QuantAlgorithmRules.Qat);
        var specs = plans.Single().Specs;
        Assert.AreEqual(4, specs[QuantType.Weight].Bits);
        Assert.AreEqual(QuantDtype.Int, specs[QuantType.Weight].Dtype);
        Assert.AreEqual(8, specs[QuantType.Output].Bits);
        Assert.AreEqual(QuantScheme.PerTensorSymmetric, specs[QuantType.Output].Scheme);
        Assert.AreEqual(QuantDtype.Int, specs[QuantType.Output].Dtype);
    }

    [TestMethod]
    public void SubConfigMatchingNothing_IsAWarningNotSilence()
    {
        var warnings = new List<string>();
        QuantConfigResolver.Resolve(Net(), new[]
        {
            new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 8, OpTypes = { "Conv1d" } },
            new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 8, OpNames = { "fc", "fc9" } },
        }, QuantAlgorithmRules.Qat, warn: warnings.Add);
        Assert.IsTrue(warnings.Any(w => w.StartsWith("config[0] matches no module", StringComparison.Ordinal)), string.Join("\n", warnings));
        Assert.IsTrue(warnings.Any(w => w.Contains("'fc9'")), string.Join("\n", warnings));
        Assert.HasCount(2, warnings);
    }

    [TestMethod]
    public void AListMatchingNothing_IsAnErrorListingTheModelsOpTypes()
    {
        var e = Assert.ThrowsExactly<QuantConfigException>(() => QuantConfigResolver.Resolve(Net(), new[]
        {
            new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 8, OpTypes = { "Conv", "Gemm" } },
        }, QuantAlgorithmRules.Qat));
        StringAssert.Contains(e.Message, "nothing would be quantized");
        StringAssert.Contains(e.Message, "Linear");
    }

    public static IEnumerable<object[]> BadConfigs()
    {
        yield return new object[] { new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 8 }, "op_types", QuantAlgorithmRules.Qat };
        yield return new object[] { new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 8, OpTypes = { "Conv3d" } }, "op_types", QuantAlgorithmRules.Qat };
        yield return new object[] { new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 34, OpTypes = { "default" } }, "quant_bits", QuantAlgorithmRules.Qat };
        yield return new object[] { new QuantConfig { QuantTypes = { QuantType.Weight }, OpTypes = { "default" } }, "quant_bits", QuantAlgorithmRules.Qat };
        yield return new object[] { new QuantConfig { OpTypes = { "default" } }, "quant_types", QuantAlgorithmRules.Qat };
        yield return new object[] { new QuantConfig { QuantTypes = { QuantType.Output }, QuantBits = 8, OpTypes = { "ReLU" } }, "quant_types", QuantAlgorithmRules.Naive };
        yield return new object[] { new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 9, OpTypes = { "default" } }, "quant_bits", QuantAlgorithmRules.Bnn };
        yield return new object[] { new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 16, OpTypes = { "default" } }, "quant_bits", QuantAlgorithmRules.Observer };
        yield return new object[] { new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 8, OpTypes = { "default" }, QuantStartStep = 10 }, "quant_start_step", QuantAlgorithmRules.Lsq };
        yield return new object[] { new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 8, OpTypes = { "default" }, QuantStartStep = -1 }, "quant_start_step", QuantAlgorithmRules.Qat };
        yield return new object[] { new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 1, OpTypes = { "default" }, QuantScheme = QuantScheme.PerTensorAffine }, "quant_scheme", QuantAlgorithmRules.Bnn };
        yield return new object[] { new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 8, OpTypes = { "default" }, QuantBitsByType = { [QuantType.Input] = 8 } }, "quant_bits", QuantAlgorithmRules.Qat };
        yield return new object[] { new QuantConfig { QuantTypes = { QuantType.Weight, QuantType.Weight }, QuantBits = 8, OpTypes = { "default" } }, "quant_types", QuantAlgorithmRules.Qat };
    }

    [TestMethod]
    [DynamicData(nameof(BadConfigs))]
    public void BadSubConfig_FailsBeforeTraining_NamingIndexAndKey(QuantConfig bad, string key, QuantAlgorithmRules rules)
    {
        var good = new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = rules.MinBits, OpTypes = { "Linear" } };
        var e = Assert.ThrowsExactly<QuantConfigException>(() => QuantConfigResolver.Validate(new[] { good, bad }, rules));
        Assert.AreEqual(1, e.ConfigIndex, e.Message);
        Assert.AreEqual(key, e.Key, e.Message);
        StringAssert.StartsWith(e.Message, $"config[1].{key}:");
    }

    [TestMethod]
    public void WeightOnALayerWithoutWeight_NamesTheModule()
    {
        var e = Assert.ThrowsExactly<QuantConfigException>(() => QuantConfigResolver.Resolve(Net(), new[]
        {
            new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 8, OpTypes = { "ReLU" } },
        }, QuantAlgorithmRules.Qat));
        Assert.AreEqual("quant_types", e.Key);
        StringAssert.Contains(e.Message, "relu1");
    }

    [TestMethod]
    public void UnsupportedModule_FailsWithItsNameAndTheSupportedList()
    {
        var model = nn.Sequential(("fc", nn.Linear(4, 4)), ("gelu", nn.GELU()));
        var e = Assert.ThrowsExactly<NotSupportedException>(() => QuantConfigResolver.Resolve(model, new[]
        {
            new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 8, OpTypes = { "Linear" } },
        }, QuantAlgorithmRules.Qat));
        StringAssert.Contains(e.Message, "'gelu'");
        StringAssert.Contains(e.Message, "Conv2d");
    }

    [TestMethod]
    public void ModuleTypes_AreMatchedByType_NotByTorchSharpsName()
    {
        Assert.AreEqual("BatchNorm2d", SupportedLayers.OpTypeOf(nn.BatchNorm2d(3)));
        Assert.AreEqual("ReLU6", SupportedLayers.OpTypeOf(nn.ReLU6()));
        Assert.AreEqual("Hardtanh", SupportedLayers.OpTypeOf(nn.Hardtanh()));
        Assert.IsNull(SupportedLayers.OpTypeOf(nn.GELU()));
    }
}
