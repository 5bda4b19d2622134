package dev.llmc4j.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.train.Trainer.LossPoint;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import javax.imageio.ImageIO;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** loss.png and loss.svg: JFreeChart draws the curves with a legend, without the points that are not finite. */
class LossChartTest {
    @TempDir
    Path dir;

    @Test
    void writesAPngAndAnSvgWithBothCurvesAndALegend() throws Exception {
        var train = List.of(
                new LossPoint(1, 4.5f), new LossPoint(2, 4.1f), new LossPoint(3, Float.NaN), new LossPoint(4, 3.2f));
        var val = List.of(new LossPoint(2, 4.3f), new LossPoint(4, 3.6f));
        Path png = dir.resolve("loss.png");
        LossChart.write(png, train, val, "GPT-2 test");

        byte[] bytes = Files.readAllBytes(png);
        assertArrayEquals(new byte[] {(byte) 0x89, 'P', 'N', 'G'}, Arrays.copyOf(bytes, 4), "a PNG");
        var image = ImageIO.read(png.toFile());
        assertEquals(900, image.getWidth());
        assertEquals(540, image.getHeight());

        Path svg = dir.resolve("loss.svg");
        var factory = DocumentBuilderFactory.newInstance();
        // the SVG names the W3C's DTD: parse without fetching it (the tests never touch the network)
        factory.setFeature("http://apache.org/xml/features/nonvalidating/load-external-dtd", false);
        var document = factory.newDocumentBuilder().parse(svg.toFile()); // well-formed
        assertEquals("svg", document.getDocumentElement().getNodeName());
        String text = Files.readString(svg);
        for (String label : new String[] {"train loss", "val loss", "GPT-2 test", "step", "loss"})
            assertTrue(text.contains(label), "the SVG shows \"" + label + "\"");

        var chart = LossChart.chart(train, val, "GPT-2 test");
        var data = chart.getXYPlot().getDataset();
        assertEquals(3, data.getItemCount(0), "the NaN point is left out");
        assertEquals(2, data.getItemCount(1));
        assertTrue(chart.getLegend() != null, "a legend names the curves");
    }
}
