namespace MLNetQuant.UnitTests.Samples;

/// <summary>The Model Builder–style sample in quick mode: trains, saves MLModel.zip, predicts through ConsumeModel.</summary>
[TestClass]
public sealed class ModelBuilderStyleSampleTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void TrainsSavesAndPredictsWithClassNames()
    {
        var (exitCode, output) = SampleRunner.Run("ModelBuilderStyle", "--train 2000 --test 300 --epochs 1", TimeSpan.FromMinutes(5));
        TestContext.WriteLine(output);
        Assert.AreEqual(0, exitCode, output);
        var accuracy = double.Parse(output.Split("test accuracy ")[1].Split('%')[0].Trim(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.IsGreaterThan(62, accuracy, "QAT from scratch, one epoch on 2,000 rows: 70.00 % on 300 test rows, run after run");
        var predictions = output.Split('\n').Where(l => l.StartsWith("Actual:", StringComparison.Ordinal)).ToArray();
        Assert.HasCount(5, predictions);
        var classNames = new[] { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot" };
        Assert.IsTrue(predictions.All(l => classNames.Any(c => l.Split("Predicted:")[1].TrimStart().StartsWith(c, StringComparison.Ordinal))),
            "predictions are class names: the saved model's PredictedLabel key mapped back by MapKeyToValue");
        StringAssert.Contains(output, "Classes, in Score's order: " + string.Join(", ", classNames.Order(StringComparer.Ordinal)),
            "Score's slot names are the label's key values (sorted by MapValueToKey's ByValue ordering)");
    }
}
