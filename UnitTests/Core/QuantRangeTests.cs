using MLNetQuant.Core;

namespace MLNetQuant.UnitTests.Core;

[TestClass]
public sealed class QuantRangeTests
{
    [TestMethod]
    [DataRow(QuantDtype.Int, 8, QuantRangeKind.Full, -128L, 127L)]
    [DataRow(QuantDtype.Int, 8, QuantRangeKind.Narrow, -127L, 127L)]
    [DataRow(QuantDtype.Int, 8, QuantRangeKind.ReduceRange, -64L, 63L)]
    [DataRow(QuantDtype.UInt, 8, QuantRangeKind.Full, 0L, 255L)]
    [DataRow(QuantDtype.UInt, 8, QuantRangeKind.Narrow, 0L, 254L)]
    [DataRow(QuantDtype.UInt, 8, QuantRangeKind.ReduceRange, 0L, 127L)]
    [DataRow(QuantDtype.Int, 4, QuantRangeKind.Full, -8L, 7L)]
    [DataRow(QuantDtype.UInt, 4, QuantRangeKind.Full, 0L, 15L)]
    [DataRow(QuantDtype.Int, 2, QuantRangeKind.Full, -2L, 1L)]
    [DataRow(QuantDtype.Int, 1, QuantRangeKind.Full, -1L, 0L)]
    [DataRow(QuantDtype.UInt, 1, QuantRangeKind.Full, 0L, 1L)]
    [DataRow(QuantDtype.Int, 16, QuantRangeKind.Full, -32768L, 32767L)]
    [DataRow(QuantDtype.UInt, 16, QuantRangeKind.Full, 0L, 65535L)]
    public void For_GivesTheDocumentedBounds(QuantDtype dtype, int bits, QuantRangeKind kind, long qMin, long qMax)
    {
        var range = QuantRange.For(dtype, bits, kind);
        Assert.AreEqual(qMin, range.QMin);
        Assert.AreEqual(qMax, range.QMax);
        Assert.AreEqual(qMax - qMin + 1, range.Levels);
    }

    [TestMethod]
    [DataRow(0)]
    [DataRow(17)]
    [DataRow(-3)]
    public void For_BitsOutsideOneToSixteen_NamesBits(int bits)
    {
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => QuantRange.For(QuantDtype.Int, bits));
        Assert.AreEqual("bits", e.ParamName);
    }

    [TestMethod]
    public void For_OneBitNarrowInt_HasNoRoomAndSaysSo()
    {
        var e = Assert.ThrowsExactly<ArgumentException>(() => QuantRange.For(QuantDtype.Int, 1, QuantRangeKind.Narrow));
        Assert.AreEqual("kind", e.ParamName);
    }

    [TestMethod]
    public void Constructor_RangeWithoutZero_Throws()
    {
        Assert.ThrowsExactly<ArgumentException>(() => new QuantRange(1, 5));
        Assert.ThrowsExactly<ArgumentException>(() => new QuantRange(0, 0));
    }

    [TestMethod]
    public void Spec_UnsignedSymmetricReducedRange_IsRefusedLikePyTorch()
    {
        var e = Assert.ThrowsExactly<ArgumentException>(() =>
            new QuantSpec(QuantDtype.UInt, 8, QuantScheme.PerTensorSymmetric, QuantRangeKind.ReduceRange));
        Assert.AreEqual("rangeKind", e.ParamName);
    }

    [TestMethod]
    public void Spec_NegativeChannelAxis_NamesChannelAxis()
    {
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            new QuantSpec(QuantDtype.Int, 8, QuantScheme.PerChannelSymmetric, channelAxis: -1));
        Assert.AreEqual("channelAxis", e.ParamName);
    }

    [TestMethod]
    public void Spec_BitsOutOfRange_NamesBits()
    {
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            new QuantSpec(QuantDtype.UInt, 17, QuantScheme.PerTensorAffine));
        Assert.AreEqual("bits", e.ParamName);
    }

    [TestMethod]
    public void Spec_SymmetricZeroPoint_IsZeroForIntAndGridMiddleForUInt()
    {
        Assert.AreEqual(0, new QuantSpec(QuantDtype.Int, 8, QuantScheme.PerTensorSymmetric).SymmetricZeroPoint);
        Assert.AreEqual(128, new QuantSpec(QuantDtype.UInt, 8, QuantScheme.PerTensorSymmetric).SymmetricZeroPoint);
        Assert.AreEqual(8, new QuantSpec(QuantDtype.UInt, 4, QuantScheme.PerTensorSymmetric).SymmetricZeroPoint);
    }

    [TestMethod]
    public void Spec_Defaults_AreTheOnnxRuntimeFriendlyOnes()
    {
        var weights = QuantSpec.Int8PerChannelSymmetricWeights;
        Assert.AreEqual(QuantDtype.Int, weights.Dtype);
        Assert.AreEqual(QuantScheme.PerChannelSymmetric, weights.Scheme);
        Assert.AreEqual(0, weights.ChannelAxis);
        var activations = QuantSpec.UInt8PerTensorAffineActivations;
        Assert.AreEqual(QuantDtype.UInt, activations.Dtype);
        Assert.AreEqual(QuantScheme.PerTensorAffine, activations.Scheme);
        Assert.AreEqual(new QuantRange(0, 255), activations.Range);
    }
}
