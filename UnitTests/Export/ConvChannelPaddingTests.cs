using MLNetQuant.Export;
using Onnx;

namespace MLNetQuant.UnitTests.Export;

/// <summary>The zero input channels a quantized Conv gains so ONNX Runtime's fast symmetric int8 kernel takes it.</summary>
[TestClass]
public sealed class ConvChannelPaddingTests
{
    private static NodeProto Conv(long group = 1)
    {
        var node = new NodeProto { OpType = "Conv", Name = "conv" };
        node.Attribute.Add(new AttributeProto { Name = "group", Type = AttributeProto.Types.AttributeType.Int, I = group });
        return node;
    }

    private static QuantizedWeight Weight(long outputs, long inputs, bool signed = true, long zeroPoint = 0)
    {
        var shape = new[] { outputs, inputs, 2L, 2L };
        var ints = Enumerable.Range(1, (int)(outputs * inputs * 4)).ToArray();
        return new QuantizedWeight(ints, new float[outputs], Enumerable.Repeat(zeroPoint, (int)outputs).ToArray(), signed, shape, 0);
    }

    [TestMethod]
    public void OnlyConvsThatTheKernelWouldTakeAfterPadding_ArePadded()
    {
        Assert.AreEqual(1, ConvChannelPadding.ExtraChannels(Conv(), Weight(16, 3)), "an RGB stem gains one channel");
        Assert.AreEqual(3, ConvChannelPadding.ExtraChannels(Conv(), Weight(32, 1)), "a grey image three");
        Assert.AreEqual(0, ConvChannelPadding.ExtraChannels(Conv(), Weight(16, 8)), "aligned already");
        Assert.AreEqual(0, ConvChannelPadding.ExtraChannels(Conv(), Weight(8, 3)), "too few output channels for the kernel");
        Assert.AreEqual(0, ConvChannelPadding.ExtraChannels(Conv(), Weight(18, 3)), "output channels not a multiple of 4");
        Assert.AreEqual(0, ConvChannelPadding.ExtraChannels(Conv(group: 3), Weight(48, 1)), "grouped");
        Assert.AreEqual(0, ConvChannelPadding.ExtraChannels(Conv(), Weight(16, 3, signed: false)), "uint8 weights");
        Assert.AreEqual(0, ConvChannelPadding.ExtraChannels(Conv(), Weight(16, 3, zeroPoint: 5)), "asymmetric weights");
        Assert.AreEqual(0, ConvChannelPadding.ExtraChannels(new NodeProto { OpType = "ConvTranspose" }, Weight(16, 3)), "only Conv");
    }

    [TestMethod]
    public void PaddedWeight_KeepsEachOutputChannelsValues_AndAppendsZeroInputChannels()
    {
        var weight = Weight(2, 3);
        var padded = ConvChannelPadding.PadWeight(weight, 1);
        CollectionAssert.AreEqual(new long[] { 2, 4, 2, 2 }, padded.Shape);
        CollectionAssert.AreEqual(
            new[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 0, 0, 0, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 0, 0, 0, 0 },
            padded.Ints);
        CollectionAssert.AreEqual(weight.Scales, padded.Scales);
        CollectionAssert.AreEqual(new long[] { 2, 3, 2, 2 }, weight.Shape, "the original is untouched");
    }
}
