package dev.llmc4j.gpt2.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

class KernelArgsTest {

    @Test
    void eachArgumentGetsAnEightByteSlotAndAPointerToIt() {
        try (Arena arena = Arena.ofConfined()) {
            long devicePtr = 0x7f00_1234_5678L;
            KernelArgs args = KernelArgs.pack(arena, devicePtr, 42, 1.5f, -7L, -1);
            assertEquals(5, args.count());
            MemorySegment values = args.values();
            MemorySegment pointers = args.pointerArray();
            assertEquals(5 * 8, values.byteSize());
            assertEquals(5 * ADDRESS.byteSize(), pointers.byteSize());

            assertEquals(devicePtr, values.get(JAVA_LONG, 0));
            assertEquals(42, values.get(JAVA_INT, 8));
            assertEquals(1.5f, values.get(JAVA_FLOAT, 16));
            assertEquals(-7L, values.get(JAVA_LONG, 24));
            assertEquals(-1, values.get(JAVA_INT, 32)); // an unsigned int seed 0xFFFFFFFF travels as -1

            // pointer i points at slot i
            for (int i = 0; i < 5; i++)
                assertEquals(
                        values.address() + 8L * i,
                        pointers.getAtIndex(ADDRESS, i).address(),
                        "pointer " + i);
            // the slots are 8-byte aligned, as every C argument type we pass needs at most that
            assertEquals(0, values.address() % 8);
        }
    }

    @Test
    void intAndFloatAreLittleEndianInTheLowBytesOfTheirSlot() {
        try (Arena arena = Arena.ofConfined()) {
            KernelArgs args = KernelArgs.pack(arena, 0x01020304, 1.0f);
            MemorySegment v = args.values();
            assertArrayEquals(new byte[] {4, 3, 2, 1}, v.asSlice(0, 4).toArray(JAVA_BYTE));
            // 1.0f = 0x3f800000
            assertArrayEquals(
                    new byte[] {0, 0, (byte) 0x80, 0x3f}, v.asSlice(8, 4).toArray(JAVA_BYTE));
        }
    }

    @Test
    void noArgumentsStillGivesAValidArray() {
        try (Arena arena = Arena.ofConfined()) {
            KernelArgs args = KernelArgs.pack(arena);
            assertEquals(0, args.count());
            assertNotEquals(MemorySegment.NULL, args.pointerArray());
        }
    }

    @Test
    void rejectsNullAndUnsupportedTypes() {
        try (Arena arena = Arena.ofConfined()) {
            assertThrows(IllegalArgumentException.class, () -> KernelArgs.pack(arena, 1, null));
            var e = assertThrows(IllegalArgumentException.class, () -> KernelArgs.pack(arena, 1.0));
            assertTrue(e.getMessage().contains("Double"), e.getMessage());
        }
    }
}
