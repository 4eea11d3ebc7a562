using Microsoft.ML;
using Microsoft.ML.Data;
using MLNetQuant.UnitTests.Training;

namespace MLNetQuant.UnitTests.Export;

/// <summary>docs/deploying.md: "ITransformer.Transform over an IDataView is safe to call from several threads". One
/// fitted QuantizedModelTransformer, several threads each transforming its own data and reading Score and
/// PredictedLabel at the same time, must give what one thread gets.</summary>
[TestClass]
public sealed class TransformThreadSafetyTests
{
    private const int Threads = 4;
    private const int Rounds = 5;
    private const int RowsPerSlice = 200;

    [TestMethod]
    public void ConcurrentTransforms_OfOneFittedModel_EqualTheSequentialRun()
    {
        var ml = new MLContext(seed: 11);
        using var model = ml.Quantization().Qat(TestData.SeededTinyCnn(11), TestData.InputShape, epochs: 2, learningRate: 0.01)
            .Fit(TestData.Quadrants(ml, 256));
        var slices = Enumerable.Range(0, Threads).Select(t => TestData.Quadrants(ml, RowsPerSlice, seed: 100 + t)).ToArray();

        (float[][] Scores, uint[] Labels) Read(IDataView slice)
        {
            var scored = model.Transform(slice);
            return (scored.GetColumn<float[]>("Score").ToArray(), scored.GetColumn<uint>("PredictedLabel").ToArray());
        }
        var expected = slices.Select(Read).ToArray();
        Assert.IsGreaterThan(1, expected.SelectMany(e => e.Labels).Distinct().Count(), "a trained model, not a constant one");

        var results = new (float[][] Scores, uint[] Labels)[Rounds, Threads];
        using var start = new Barrier(Threads);
        var errors = new System.Collections.Concurrent.ConcurrentBag<Exception>();
        var workers = Enumerable.Range(0, Threads).Select(t => new Thread(() =>
        {
            try
            {
                for (var round = 0; round < Rounds; round++)
                {
                    start.SignalAndWait(); // every round, all threads transform and read at once
                    results[round, t] = Read(slices[t]);
                }
            }
            catch (Exception e)
            {
                errors.Add(e);
                start.RemoveParticipant(); // the others go on without this thread
            }
        })).ToArray();
        foreach (var worker in workers) worker.Start();
        foreach (var worker in workers) Assert.IsTrue(worker.Join(TimeSpan.FromMinutes(2)), "a transforming thread hung");
        Assert.IsEmpty(errors, string.Join("\n", errors));

        for (var round = 0; round < Rounds; round++)
            for (var t = 0; t < Threads; t++)
            {
                var (scores, labels) = results[round, t];
                CollectionAssert.AreEqual(expected[t].Labels, labels, $"round {round}, thread {t}: PredictedLabel");
                Assert.HasCount(RowsPerSlice, scores);
                for (var row = 0; row < RowsPerSlice; row++)
                    CollectionAssert.AreEqual(expected[t].Scores[row], scores[row], $"round {round}, thread {t}, row {row}: Score bit for bit");
            }
    }
}
