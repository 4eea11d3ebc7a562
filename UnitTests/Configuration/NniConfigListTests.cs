using MLNetQuant.Configuration;

namespace MLNetQuant.UnitTests.Configuration;

[TestClass]
public sealed class NniConfigListTests
{
    [TestMethod]
    public void Parse_NniQatExample_GivesTypedConfigs()
    {
        // NNI's QAT_torch_quantizer.py config_list, as JSON.
        var configs = NniConfigList.Parse("""
            [
              {"quant_types": ["weight", "input"], "quant_bits": {"weight": 8, "input": 8}, "op_names": ["conv1", "conv2"]},
              {"quant_types": ["output"], "quant_bits": {"output": 8}, "op_names": ["relu1", "relu2"]},
              {"quant_types": ["output", "weight", "input"], "quant_bits": {"output": 8, "weight": 8, "input": 8},
               "op_names": ["fc1", "fc2"], "quant_scheme": {"weight": "per_channel_symmetric"}, "quant_dtype": "int",
               "quant_start_step": 100},
              {"op_types": ["Linear"], "op_names": ["fc2"], "exclude": false, "quant_types": ["weight"], "quant_bits": 4}
            ]
            """);
        Assert.HasCount(4, configs);
        CollectionAssert.AreEqual(new[] { QuantType.Weight, QuantType.Input }, configs[0].QuantTypes.ToArray());
        Assert.AreEqual(8, configs[0].BitsFor(QuantType.Input));
        Assert.AreEqual(QuantScheme.PerChannelSymmetric, configs[2].QuantSchemeByType[QuantType.Weight]);
        Assert.AreEqual(QuantDtype.Int, configs[2].QuantDtype);
        Assert.AreEqual(100, configs[2].QuantStartStep);
        Assert.IsFalse(configs[3].Exclude, "exclude: false is not an exclusion (NNI v2 would exclude)");
        Assert.AreEqual(4, configs[3].QuantBits);
        QuantConfigResolver.Validate(configs, QuantAlgorithmRules.Qat);
    }

    [TestMethod]
    [DataRow("""[{"bad_key": "abc"}]""", "bad_key")]
    [DataRow("""[{"quant_types": "abc"}]""", "quant_types")]
    [DataRow("""[{"quant_types": ["abc"]}]""", "quant_types")]
    [DataRow("""[{"op_types": "default"}]""", "op_types")]
    [DataRow("""[{"quant_bits": {"abc": 123}}]""", "quant_bits")]
    [DataRow("""[{"quant_bits": "8"}]""", "quant_bits")]
    [DataRow("""[{"quant_scheme": "per_tensor"}]""", "quant_scheme")]
    [DataRow("""[{"quant_dtype": 8}]""", "quant_dtype")]
    [DataRow("""[{"exclude": "yes"}]""", "exclude")]
    public void Parse_NniBadConfigs_FailNamingIndexAndKey(string json, string key)
    {
        var e = Assert.ThrowsExactly<QuantConfigException>(() => NniConfigList.Parse(json));
        Assert.AreEqual(0, e.ConfigIndex);
        Assert.AreEqual(key, e.Key, e.Message);
    }

    [TestMethod]
    public void Parse_ThenValidate_RejectsNnisOutOfRangeBits()
    {
        var configs = NniConfigList.Parse("""[{"quant_types": ["weight"], "quant_bits": 34, "op_types": ["default"]}]""");
        var e = Assert.ThrowsExactly<QuantConfigException>(() => QuantConfigResolver.Validate(configs, QuantAlgorithmRules.Qat));
        Assert.AreEqual("quant_bits", e.Key);
    }
}
