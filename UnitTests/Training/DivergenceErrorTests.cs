using Microsoft.ML;
using MLNetQuant.Training;
using static TorchSharp.torch;

namespace MLNetQuant.UnitTests.Training;

/// <summary>A run whose gradients stop being finite ends at that step with an error naming the step and the layer.</summary>
[TestClass]
public sealed class DivergenceErrorTests
{
    [TestMethod]
    public void NonFiniteGradient_NamesTheStepAndTheFirstLayer()
    {
        var ml = new MLContext(1);
        var options = new QatOptions
        {
            InputShape = TestData.InputShape, Device = QuantDevice.Cpu, Epochs = 1, LearningRate = 0.01,
            ModelFactory = () =>
            {
                var first = nn.Linear(64, 8);
                var second = nn.Linear(8, 4);
                using (no_grad()) second.weight![0, 0] = float.PositiveInfinity; // inf − inf = NaN from the first step on
                return nn.Sequential(nn.Flatten(), first, nn.ReLU(), second);
            },
        };
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => QuantizationRunner.Run(ml, options, TestData.Quadrants(ml, 256)));
        StringAssert.Contains(e.Message, "diverged at epoch 1, step 1");
        StringAssert.Contains(e.Message, "the gradient of '1.weight' (layer '1')", "the layer nearest the input comes first");
        StringAssert.Contains(e.Message, "'3'", "every layer with a non-finite gradient is listed");
    }
}
