using System.Text;
using Microsoft.ML;
using MLNetQuant.OnnxPtq;

namespace MLNetQuant.UnitTests.OnnxPtq;

/// <summary>Bytes that are not an ONNX model are refused when the estimator is created, by option name.</summary>
[TestClass]
public sealed class NotOnnxInputTests
{
    public static IEnumerable<object[]> NotOnnx()
    {
        yield return new object[] { "text", Encoding.UTF8.GetBytes("this is a text file, not a model\n") };
        yield return new object[] { "zip header", new byte[] { 0x50, 0x4B, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00, 0x08, 0x00 } };
        yield return new object[] { "empty", Array.Empty<byte>() };
        yield return new object[] { "random", Enumerable.Range(0, 4096).Select(i => (byte)(i * 7919 % 251)).ToArray() };
    }

    [TestMethod]
    [DynamicData(nameof(NotOnnx))]
    public void ModelBytes_ThatAreNotOnnx_AreRefusedByName(string what, byte[] bytes)
    {
        var ml = new MLContext(0);
        var e = Assert.ThrowsExactly<ArgumentException>(() => ml.Quantization().Observer(new OnnxQuantizationOptions { ModelBytes = bytes }), what);
        Assert.AreEqual(nameof(OnnxQuantizationOptions.ModelBytes), e.ParamName);
        StringAssert.Contains(e.Message, "is not an ONNX model");
    }

    [TestMethod]
    public void ModelPath_ToAFileThatIsNotOnnx_IsRefusedWithThePath()
    {
        var path = Path.Combine(Path.GetTempPath(), $"not-a-model-{Guid.NewGuid():N}.onnx");
        File.WriteAllText(path, "{ \"weights\": [1, 2, 3] }");
        try
        {
            var ml = new MLContext(0);
            var e = Assert.ThrowsExactly<ArgumentException>(() => ml.Quantization().Naive(new OnnxQuantizationOptions { ModelPath = path }));
            Assert.AreEqual(nameof(OnnxQuantizationOptions.ModelPath), e.ParamName);
            StringAssert.Contains(e.Message, path);
            StringAssert.Contains(e.Message, "is not an ONNX model");
        }
        finally
        {
            File.Delete(path);
        }
    }
}
